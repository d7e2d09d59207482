#!/usr/bin/env python3
"""Independent reference values for Hearth's RDP accountant (protocol/dp).

Run: python3 test/dp/vectors/generate_sampled_gaussian.py > test/dp/vectors/sampled-gaussian.json

Standard library only (no numpy, scipy or mpmath). It does NOT reuse the accountant's method:

* integer orders: A_alpha = sum_i C(a,i) (1-q)^(a-i) q^i exp((i^2-i)/(2 s^2))
  (Mironov, Talwar, Zhang 2019, arXiv:1908.10530, Sec. 3.2) in exact rationals (fractions)
  for the binomial part and 60-digit decimal for exp/log;
* fractional orders: A_alpha = integral of N(0,s^2)(x) * (1 - q + q exp((2x-1)/(2 s^2)))^alpha dx
  (MTZ19 Sec. 3, the definition) by the trapezoid rule in log space on a grid of step
  min(s, s^2)/16 over [-60 s - 10, alpha + 60 s + 10]. The integrand is analytic and decays
  like a Gaussian, so the trapezoid rule converges geometrically; the TypeScript code uses the
  series of MTZ19 Sec. 3.3 instead, with |C(a,i)| (an upper bound), so its values must be
  >= these and very close;
* (epsilon, delta): the conversion of Canonne, Kamath, Steinke 2020 (arXiv:2004.00010v4,
  Prop. 12), eps = r + log1p(-1/a) - log(delta*a)/(a-1), minimised over dp_accounting's default
  orders (a > 1.01 only; eps = 0 when delta^2 > 1 - exp(-r)).

Also writes log(erfc(x)) at a few points in 60-digit decimal.
"""
import json
import math
from decimal import Decimal, getcontext
from fractions import Fraction

getcontext().prec = 60
PI = Decimal('3.14159265358979323846264338327950288419716939937510582097494459')

ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(11, 64)) + [128, 256, 512, 1024]


def log_a_int_exact(q, sigma, alpha):
    qf = Fraction(q)
    s2 = Fraction(sigma) ** 2
    total = Decimal(0)
    for i in range(alpha + 1):
        coef = math.comb(alpha, i) * (1 - qf) ** (alpha - i) * qf ** i  # exact rational
        if coef == 0:
            continue
        expo = Fraction(i * i - i) / (2 * s2)
        term = (Decimal(coef.numerator) / Decimal(coef.denominator)) * (
            Decimal(expo.numerator) / Decimal(expo.denominator)).exp()
        total += term
    return float(total.ln())


def _log_add(a, b):
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def log_a_quadrature(q, sigma, alpha):
    s2 = sigma * sigma
    h = min(sigma, s2) / 16.0
    lo = -60.0 * sigma - 10.0
    hi = alpha + 60.0 * sigma + 10.0
    n = int(math.ceil((hi - lo) / h))
    log1mq = math.log1p(-q)
    logq = math.log(q)
    log_norm = -0.5 * math.log(2 * math.pi * s2)
    logs = []
    for k in range(n + 1):
        x = lo + k * h
        u = (2 * x - 1) / (2 * s2)
        mix = _log_add(log1mq, logq + u)  # log(1 - q + q e^u)
        logs.append(log_norm - x * x / (2 * s2) + alpha * mix)
    m = max(logs)
    s = sum(math.exp(v - m) for v in logs) - 0.5 * (math.exp(logs[0] - m) + math.exp(logs[-1] - m))
    return m + math.log(s * h)


def rdp_one_round(q, sigma, alpha):
    if q == 1.0:
        return alpha / (2 * sigma * sigma)
    if float(alpha).is_integer():
        return log_a_int_exact(q, sigma, int(alpha)) / (alpha - 1)
    return log_a_quadrature(q, sigma, alpha) / (alpha - 1)


def epsilon(orders, rdp, delta):
    best, best_order = math.inf, orders[0]
    for a, r in zip(orders, rdp):
        if delta * delta + math.expm1(-r) > 0:
            e = 0.0
        elif a > 1.01:
            e = r + math.log1p(-1 / a) - math.log(delta * a) / (a - 1)
        else:
            e = math.inf
        if e < best:
            best, best_order = e, a
    return max(0.0, best), best_order


def log_erfc(x):
    x = Decimal(x)
    if abs(x) < 3:
        s, term, n = Decimal(0), x, 0
        while True:
            t = term / (2 * n + 1)
            s += t
            if abs(t) < Decimal(10) ** -58:
                break
            n += 1
            term = -term * x * x / n
        return float((1 - 2 / PI.sqrt() * s).ln())
    ax = abs(x)
    f = ax
    for k in range(6000, 0, -1):  # continued fraction A&S 7.1.14, evaluated backwards
        f = ax + (Decimal(k) / 2) / f
    v = (-ax * ax).exp() / PI.sqrt() / f
    return float((2 - v).ln() if x < 0 else v.ln())


# (q, z, rounds, delta, epsilon from Google's dp_accounting RdpAccountant with default orders
# where known; None where only this script's value is available).
CASES = [
    (1.0, 5.0, 100, 1e-5, 10.7255),
    (0.1, 2.0, 100, 1e-5, 2.5806),
    (0.01, 1.1, 1000, 1e-5, 1.7118),
    (0.001, 1.0, 10000, 1e-6, 0.9795),
    (0.5, 0.8, 50, 1e-5, None),
    (0.05, 0.7, 2000, 1e-5, None),
    (0.2, 10.0, 1, 1e-5, None),
    (0.003, 3.0, 100000, 1e-6, None),
    (0.02, 0.9, 500, 1e-7, None),
    (1.0, 1.0, 1, 1e-5, None),
]


def main():
    cases = []
    for q, z, rounds, delta, published in CASES:
        per_round = [rdp_one_round(q, z, a) for a in ORDERS]
        eps, order = epsilon(ORDERS, [r * rounds for r in per_round], delta)
        cases.append({
            'samplingRate': q, 'noiseMultiplier': z, 'rounds': rounds, 'delta': delta,
            'epsilon': eps, 'order': order, 'dpAccountingEpsilon': published,
            'rdpPerRound': per_round,
        })
    erfc_points = [-20.0, -3.0, -1.0, -0.25, 0.0, 0.3, 1.0, 1.49, 1.51, 2.5, 5.0, 12.0, 30.0, 300.0]
    out = {
        'note': ('Generated by generate_sampled_gaussian.py (standard-library Python: exact rationals '
                 'and 60-digit decimals for integer orders, trapezoid quadrature of the defining '
                 'integral for fractional orders). dpAccountingEpsilon: published values of Google '
                 'dp_accounting RdpAccountant with its default orders, rounded to 4 decimals.'),
        'orders': ORDERS,
        'cases': cases,
        'logErfc': [[x, log_erfc(x)] for x in erfc_points],
    }
    print(json.dumps(out, indent=1))


if __name__ == '__main__':
    main()
