// How every Slipstream server starts and stops the same way: SIGTERM and
// SIGINT ask it to stop, SIGPIPE is ignored (a client that goes away is an
// error on its connection, not the process's death), and a server whose
// connections did not end in time exits without tearing the stack down.
#pragma once

#include <atomic>
#include <string_view>

namespace slip::app {

// Installs the handlers; the flag turns true on SIGTERM or SIGINT.
const std::atomic<bool>& install_stop_signals();
// Installs a SIGHUP handler; the flag turns true on each SIGHUP (the caller clears it).
std::atomic<bool>& install_reload_signal();

// After the server's "done" line: when some connection uthread still uses
// the stack, tearing the stack down under it is worse than leaving the
// process to the kernel, so this says so and exits 0 at once.
void exit_now_if_unclean(std::string_view prog, bool clean);

}  // namespace slip::app
