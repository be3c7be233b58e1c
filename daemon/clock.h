/* clock: the daemon's one monotonic clock, for every deadline, timeout,
 * interval and latency. Never the wall clock: a time step must not end a
 * client early or hold a check back. */
#ifndef GK_CLOCK_H
#define GK_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC, in milliseconds and in microseconds. */
uint64_t clock_now_ms(void);
uint64_t clock_now_us(void);
/* CLOCK_MONOTONIC_COARSE, in whole seconds: read from the vDSO without
 * touching the TSC, cheap enough for every round of the packet loop, and
 * only as fine as the scheduler tick. For the workers' heartbeat. */
uint64_t clock_coarse_now_s(void);
/* CLOCK_REALTIME in milliseconds: only for what an operator gives as a
 * date (an override's deadline, `--until`), which the wall clock defines.
 * Waits towards it are re-measured often, so a step costs little. */
int64_t clock_wall_ms(void);

#endif
