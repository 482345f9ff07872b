#include "lifecycle.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>

namespace slip::app {
namespace {

std::atomic<bool> g_stop{false}, g_reload{false};

}  // namespace

const std::atomic<bool>& install_stop_signals() {
  std::signal(SIGTERM, [](int) { g_stop.store(true); });
  std::signal(SIGINT, [](int) { g_stop.store(true); });
  std::signal(SIGPIPE, SIG_IGN);
  return g_stop;
}

std::atomic<bool>& install_reload_signal() {
  std::signal(SIGHUP, [](int) { g_reload.store(true); });
  return g_reload;
}

void exit_now_if_unclean(std::string_view prog, bool clean) {
  if (clean) return;
  std::fprintf(stderr, "%.*s: a connection did not stop in time; exiting without teardown\n",
               static_cast<int>(prog.size()), prog.data());
  std::fflush(stderr);
  ::_exit(0);
}

}  // namespace slip::app
