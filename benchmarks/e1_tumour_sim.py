#!/usr/bin/env python3
"""A 3-scan tumour cohort drawn from synth's documented model in numpy (docs/synth.md), independently
of `lutdose synth` (docs/validation.md §10, "Which coverage misses are real").

E1 TACs A(t) = f A0 exp(-(lambda_bio + lambda_p) t), f and lambda_bio log-normal with arithmetic means
0.006 and 0.00335665 1/h and CVs 30 % and 50 % (synth's tumour defaults), y = A + 0.15 A z redrawn while
<= 0, at 4, 24, 48 h. Writes OUT/tacs.csv and OUT/patients.csv (synth's columns, A0 7400 MBq) for
`lutdose population learn` and population_profile_likelihood.py, and prints the draws' own mean and
variance of ln lambda_bio and ln f.

Usage: e1_tumour_sim.py SEED PATIENTS OUT    (numpy; /usr/bin/python3)
"""

import math
import os
import sys

import numpy as np

LAMBDA_P_PER_H = math.log(2) / 159.528  # 177Lu, 6.647 d (ICRP-107; docs/methods.md §0)
A0_MBQ = 7400.0  # synth's default administered activity
FRACTION_MEAN, CV_FRACTION = 0.006, 0.30  # docs/synth.md: tumours 0.006, --cv-fraction 0.30
LAMBDA_BIO_MEAN_PER_H, CV_CLEARANCE = 0.00335665, 0.50  # data/kinetics/population_kinetics.csv tumour_*
NOISE_B = 0.15  # synth's tumour noise, proportional 15 %
TIMES_H = (4, 24, 48)


def lognormal(rng, mean, cv, n):
    s = math.sqrt(math.log1p(cv * cv))
    return mean * np.exp(s * rng.standard_normal(n) - 0.5 * s * s)


def main():
    seed, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    rng = np.random.default_rng(seed)
    f = lognormal(rng, FRACTION_MEAN, CV_FRACTION, n)
    lam = lognormal(rng, LAMBDA_BIO_MEAN_PER_H, CV_CLEARANCE, n)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tacs.csv"), "w") as tacs, open(os.path.join(out, "patients.csv"), "w") as pts:
        tacs.write("patient,cycle,voi,time_h,activity_MBq\n")
        pts.write("patient,cycle,administered_MBq\n")
        for i in range(n):
            pts.write("S%05d,1,%g\n" % (i, A0_MBQ))
            for t in TIMES_H:
                m = A0_MBQ * f[i] * math.exp(-(lam[i] + LAMBDA_P_PER_H) * t)
                y = -1.0
                while y <= 0:
                    y = m + NOISE_B * m * rng.standard_normal()
                tacs.write("S%05d,1,tumour_1,%g,%r\n" % (i, t, y))
    print("ln lambda_bio mean %.3f variance %.3f; ln f mean %.3f variance %.3f"
          % (np.mean(np.log(lam)), np.var(np.log(lam)), np.mean(np.log(f)), np.var(np.log(f))))


if __name__ == "__main__":
    main()
