#!/usr/bin/python3
"""Faults: the controllers stop answering (eqsim stopped with SIGSTOP for 6 s, then resumed), and a
controller restarts on the same port (eqsim killed and started again, a fresh plant with no buffer in
equalization).

Promises:
- stopped: within 3 s eqd counts timeouts and no channel of the bus is `ok` (invalid, stale or offline), the bus
  status is not `ok` (it holds, then ramps down), eqd keeps serving eqctl; after the resume every channel
  is `ok` again within 8 s (reconnect backoff at most backoff_max_ms = 5 s), the buffers are back in
  equalization (read in the controller's registers) and the bus balances again.
- restarted: eqd reconnects (`reconnects` grows), rewrites the commands: the new controller's buffers
  enter equalization within 10 s, read in its registers, and the bus balances again."""
import os
import signal
import time

from faultlib import ModbusClient, Rig, free_port_pair

STOP_S = 6.0


def health_counts(rig):
    return rig.bus()["channels"]


def body(rig):
    base = free_port_pair()
    rig.step(f"start eqsim on ports {base}, {base + 1} and eqd; wait until the buffers balance the bus")
    rig.start_eqsim(base_port=base)
    cab2 = ModbusClient(base + 1)
    rig.start_eqd()
    rig.wait_converged()

    # --- the controllers stop answering
    t_stop = time.monotonic()
    rig.eqsim.signal(signal.SIGSTOP)
    rig.step(f"eqsim stopped (SIGSTOP) for {STOP_S} s")
    c = rig.wait_for(3, "no channel of bus main ok while its controllers are stopped",
                     lambda: (lambda h: h["ok"] == 0 and h)(health_counts(rig)))
    rig.step(f"{time.monotonic() - t_stop:.2f} s after the stop: channels ok {c['ok']}, invalid {c['invalid']}, "
             f"stale {c['stale']}, offline {c['offline']}; bus status {rig.bus()['status']}")
    rig.check(rig.bus()["status"] != "ok", "bus status is not ok while its data is unknown")
    ctls = rig.wait_for(3, "timeouts counted", lambda: (lambda cs: all(x["timeouts"] > 0 for x in cs.values())
                                                       and cs)(rig.controllers()))
    rig.step("controllers: " + ", ".join(f"{n} connected {x['connected']}, timeouts {x['timeouts']}, "
                                         f"last error '{x['last_error']}'" for n, x in ctls.items()))
    time.sleep(max(0.0, t_stop + STOP_S - time.monotonic()))
    rig.eqd_alive()
    t_cont = time.monotonic()
    rig.eqsim.signal(signal.SIGCONT)
    rig.step("eqsim resumed (SIGCONT)")
    rig.wait_for(8, "every channel ok again", lambda: health_counts(rig)["ok"] == 6, poll_s=0.1)
    rig.step(f"every channel ok {time.monotonic() - t_cont:.2f} s after the resume")
    rig.wait_for(10, "buffers back in equalization (controller registers)", lambda: rig.buffers_equalizing(cab2))
    rig.step(f"buffers in equalization {time.monotonic() - t_cont:.2f} s after the resume")
    rig.wait_converged()
    rig.step(f"balanced again {time.monotonic() - t_cont:.2f} s after the resume")

    # --- a controller restarts on the same port
    reconnects0 = {n: x["reconnects"] for n, x in rig.controllers().items()}
    rig.eqsim.signal(signal.SIGKILL)
    rig.eqsim.wait(5)
    rig.step("eqsim killed; starting a new one on the same ports")
    t_restart = time.monotonic()
    rig.start_eqsim(base_port=base, write_config=False, log_name="eqsim-2.log")
    cab2.close()
    rig.wait_for(10, "buffers in equalization on the restarted controller (its registers)",
                 lambda: rig.buffers_equalizing(cab2))
    rig.step(f"buffers in equalization on the new controller {time.monotonic() - t_restart:.2f} s after its start")
    # cab2 (the buffers' controller) was seen first; cab1's poller may still be in its reconnect
    # backoff (its first attempt can hit the port before the new eqsim listens): wait for every link.
    def all_reconnected():
        return all(x["connected"] and x["reconnects"] > reconnects0[n] for n, x in rig.controllers().items())
    rig.wait_for(10, "every controller reconnected", all_reconnected, poll_s=0.1)
    rig.step(f"every controller reconnected {time.monotonic() - t_restart:.2f} s after the new controller's start")
    ctls = rig.controllers()
    for n, x in ctls.items():
        rig.check(x["connected"] and x["reconnects"] > reconnects0[n],
                  f"{n}: reconnected (connected {x['connected']}, reconnects {reconnects0[n]} -> {x['reconnects']})")
    rig.wait_converged()
    rig.step(f"balanced again {time.monotonic() - t_restart:.2f} s after the restart")
    rig.eqd_alive()


if __name__ == "__main__":
    Rig(os.path.basename(__file__)[:-8]).run(body)
