// Timing driver for sgoldt/nn2pp's committee-machine ODE integrator (`propagate` in its
// scmpp_ode.cpp), used by ../nn2pp_compare.py. nn2pp's code is not part of hdbench: its source file is
// included at build time (-DNN2PP_SOURCE=...), with its `main` renamed away.
//
// usage: driver Q0 R0 v0 A0 lr t_max dt  -> prints "seconds eg" (eg: erf committee, Saad-Solla).
#include <armadillo>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
using namespace std;
using namespace arma;

#define main nn2pp_main
#include NN2PP_SOURCE
#undef main

static double eg_erf(const mat& Q, const mat& R, const mat& T, const vec& A, const vec& v) {
  double e = 0;
  for (uword i = 0; i < Q.n_rows; i++)
    for (uword k = 0; k < Q.n_rows; k++)
      e += v(i) * v(k) * asin(Q(i, k) / sqrt((1 + Q(i, i)) * (1 + Q(k, k)))) / datum::pi;
  for (uword n = 0; n < T.n_rows; n++)
    for (uword m = 0; m < T.n_rows; m++)
      e += A(n) * A(m) * asin(T(n, m) / sqrt((1 + T(n, n)) * (1 + T(m, m)))) / datum::pi;
  for (uword i = 0; i < Q.n_rows; i++)
    for (uword n = 0; n < T.n_rows; n++)
      e -= 2 * v(i) * A(n) * asin(R(i, n) / sqrt((1 + Q(i, i)) * (1 + T(n, n)))) / datum::pi;
  return e;
}

int main(int argc, char* argv[]) {
  if (argc != 8) { fprintf(stderr, "usage: driver Q0 R0 v0 A0 lr t_max dt\n"); return 2; }
  mat Q, R; vec v, A;
  Q.load(argv[1], raw_ascii); R.load(argv[2], raw_ascii); v.load(argv[3], raw_ascii); A.load(argv[4], raw_ascii);
  double lr = atof(argv[5]), t_max = atof(argv[6]), dt = atof(argv[7]), t = 0;
  mat T = eye<mat>(R.n_cols, R.n_cols);
  auto begin = chrono::steady_clock::now();
  propagate(t_max - dt / 2, dt, t, Q, R, T, A, v, J2_erf, I2_erf, I3_erf, I4_erf, lr, lr, 0.0, 0.0, false);
  double seconds = chrono::duration<double>(chrono::steady_clock::now() - begin).count();
  printf("%.6f %.12g\n", seconds, eg_erf(Q, R, T, A, v));
  return 0;
}
