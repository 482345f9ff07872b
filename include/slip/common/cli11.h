// CLI11, compiled without optimization.
//
// CLI11 2.1 (Debian 12) is header-only, so every command-line front end
// compiled and optimized all of it again: about half of each such file's
// build time, in both builds of the suite. Option parsing runs once at
// start-up, so its speed does not matter. The standard headers CLI11 uses
// come first, outside the region, so that their templates stay optimized for
// the rest of the including file.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <limits>
#include <locale>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__clang__)
#pragma clang optimize off
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("O0")
#endif

#include <CLI/CLI.hpp>

#if defined(__clang__)
#pragma clang optimize on
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif
