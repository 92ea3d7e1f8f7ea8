"""Independent references for the compiled-network tests."""


def python_loop(n: int) -> int:
  """The seed's program written out again, independently of the package (K from Python integers)."""
  big_k = 0
  while (big_k + 1)**10 <= n**7:
    big_k += 1
  k = 0
  for i in range(1, big_k + 1):
    if (i * i) % n > (k * k) % n:
      k = i
  return k
