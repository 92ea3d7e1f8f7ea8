"""Independent references for the task tests: the seed programs in plain Python / float64 numpy."""
import numpy as np


def kmax_int(n: int) -> int:
  """Largest K with K**10 <= n**7, by Python integers."""
  k = max(int(n**0.7) - 2, 0)
  while (k + 1) ** 10 <= n**7:
    k += 1
  while k**10 > n**7:
    k -= 1
  return k


def seed_loop(n: int) -> tuple[int, int]:
  """The seed program verbatim: k = 0; for i = 1..K: if i*i mod n > k*k mod n: k = i."""
  k = 0
  for i in range(1, kmax_int(n) + 1):
    if i * i % n > k * k % n:
      k = i
  return k, k * k % n


def polymax_float64(c) -> tuple[float, float]:
  """max and argmax of P on [0, 1] in float64: real roots of P' in [0, 1] (numpy's companion eigenvalues,
  polished by Newton steps in float64) and both endpoints; ties (within 1e-12) to the smallest x."""
  c = np.trim_zeros(np.asarray(c, np.float64), "b")
  if c.size == 0:
    return 0.0, 0.0
  p = np.polynomial.Polynomial(c)
  xs = [0.0, 1.0]
  if c.size > 2:
    dp, ddp = p.deriv(), p.deriv(2)
    for r in dp.roots():
      if abs(r.imag) < 1e-6 and -1e-6 <= r.real <= 1 + 1e-6:
        x = float(np.clip(r.real, 0.0, 1.0))
        for _ in range(3):
          d2 = ddp(x)
          if d2 != 0:
            x = float(np.clip(x - dp(x) / d2, 0.0, 1.0))
        xs.append(x)
  xs = np.array(sorted(xs))
  vals = p(xs)
  best = vals.max()
  i = int(np.argmax(vals >= best - 1e-12 * max(1.0, np.abs(c).sum())))
  return float(vals[i]), float(xs[i])
