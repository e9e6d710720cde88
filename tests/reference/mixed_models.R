# Reference fits of linear and generalized linear mixed models, for tests/test_random_effects.py.
#   Rscript tests/reference/mixed_models.R    (from the repository root)
# Needs lme4 and glmmTMB (Debian: apt-get install r-cran-lme4 r-cran-glmmtmb). Writes the data
# sets it uses (CSV) and every reference number (JSON, 17 significant digits) beside itself.
suppressPackageStartupMessages({library(lme4); library(glmmTMB); library(jsonlite)})
here <- "tests/reference"
out <- list(versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                            glmmTMB = as.character(packageVersion("glmmTMB"))))

lme4_summary <- function(fit) {
  vc <- as.data.frame(VarCorr(fit))
  list(logLik = as.numeric(logLik(fit)), fixef = unname(fixef(fit)),
       se = unname(sqrt(diag(as.matrix(vcov(fit))))), vc_sdcor = vc$sdcor, vc_names = paste(vc$grp, vc$var1, vc$var2),
       converged = is.null(fit@optinfo$conv$lme4$messages), singular = isSingular(fit))
}
tmb_summary <- function(fit) {
  s <- summary(fit$sdr, "fixed")
  r <- summary(fit$sdr, "random")
  list(logLik = as.numeric(logLik(fit)), fixef = unname(fixef(fit)$cond),
       se = unname(sqrt(diag(vcov(fit)$cond))), pdHess = fit$sdr$pdHess,
       ranef = unname(r[, 1]), ranef_se = unname(r[, 2]), par = unname(s[, 1]), par_names = rownames(s))
}

# sleepstudy: correlated random intercept and slope
write.csv(sleepstudy, file.path(here, "sleepstudy.csv"), row.names = FALSE)
f <- Reaction ~ Days + (Days | Subject)
ml <- lmer(f, sleepstudy, REML = FALSE, control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12)))
reml <- lmer(f, sleepstudy, REML = TRUE, control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12)))
out$sleepstudy_ml <- c(lme4_summary(ml), list(sigma = sigma(ml), ranef = as.vector(t(as.matrix(ranef(ml)$Subject)))))
out$sleepstudy_reml <- c(lme4_summary(reml), list(sigma = sigma(reml)))
out$sleepstudy_ml_tmb <- c(tmb_summary(glmmTMB(f, sleepstudy, REML = FALSE)))
out$sleepstudy_reml_tmb <- c(tmb_summary(glmmTMB(f, sleepstudy, REML = TRUE)))

# cbpp: binomial GLMM, random intercept per herd; Laplace and 25-point adaptive Gauss-Hermite
write.csv(cbpp, file.path(here, "cbpp.csv"), row.names = FALSE)
g <- cbind(incidence, size - incidence) ~ period + (1 | herd)
ctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12), tolPwrss = 1e-12)
out$cbpp_laplace <- lme4_summary(glmer(g, cbpp, binomial, control = ctrl))
out$cbpp_agq25 <- lme4_summary(glmer(g, cbpp, binomial, nAGQ = 25, control = ctrl))
out$cbpp_laplace_tmb <- tmb_summary(glmmTMB(g, cbpp, family = binomial))

# grouseticks: Poisson GLMM, random intercept per brood
write.csv(grouseticks, file.path(here, "grouseticks.csv"), row.names = FALSE)
p <- TICKS ~ YEAR + cHEIGHT + (1 | BROOD)
out$grouseticks <- lme4_summary(glmer(p, grouseticks, poisson, control = ctrl))
out$grouseticks_tmb <- tmb_summary(glmmTMB(p, grouseticks, family = poisson))

# Dyestuff2: the batch variance is estimated on its boundary (0)
write.csv(Dyestuff2, file.path(here, "dyestuff2.csv"), row.names = FALSE)
out$dyestuff2_ml <- c(lme4_summary(lmer(Yield ~ 1 + (1 | Batch), Dyestuff2, REML = FALSE)),
                      list(sigma = sigma(lmer(Yield ~ 1 + (1 | Batch), Dyestuff2, REML = FALSE))))

# a random intercept and slope whose correlation's estimate is 1 (300 groups of 10, written by
# benchmarks/mixed.py's slope_data(groups=300)): both peers report a correlation of 1.000
sb <- read.csv(file.path(here, "slope_boundary.csv"))
sb$g <- factor(sb$g)
out$slope_boundary <- lme4_summary(glmer(y ~ x + (x | g), sb, family = binomial))
out$slope_boundary_tmb <- list(logLik = as.numeric(logLik(glmmTMB(y ~ x + (x | g), sb, family = binomial))))

writeLines(toJSON(out, digits = I(17), auto_unbox = TRUE, pretty = TRUE), file.path(here, "mixed_models.json"))
