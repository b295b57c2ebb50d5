// Stand-in for the header nn2pp's scmpp_ode.cpp includes: the declarations its main() refers to.
// The timing driver calls only `propagate`; these keep the file compiling.
#pragma once
#include <armadillo>
#include <string>
using namespace arma;
const int LINEAR = 0, ERF = 1;
const int INIT_LARGE = 1, INIT_SMALL = 2, INIT_INFORMED = 3, INIT_DENOISE = 4;
inline mat g_lin(mat& x) { return x; }
inline mat g_erf(mat& x) { return erf(x / datum::sqrt2); }
inline const char* activation_name(int g) { return g == ERF ? "erf" : "lin"; }
inline double eg_analytical(mat&, mat&, mat&, vec&, vec&, mat (*)(mat&), mat (*)(mat&)) { return 0; }
inline std::string status(double, double, double, double, mat&, mat&, mat&, vec&, vec&) { return ""; }
