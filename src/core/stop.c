/* The stop signals (docs/design.md, "Signals"): SIGUSR1 (SLURM's warning
 * before the time limit), SIGTERM and SIGINT ask the process to stop. The
 * handlers only set a flag; the run polls it between steps (checkpoint,
 * exit 75) and slow work before the first step polls it too (exit 75,
 * nothing to save). A second SIGTERM or SIGINT ends the process at once,
 * and so does a watchdog DNAL_STOP_GRACE_S seconds after the first SIGTERM
 * or SIGINT: a process blocked in I/O must still end before SLURM's
 * KillWait (30 s by default) sends SIGKILL. Either way the last durable
 * checkpoint is intact, so both end with 75 as well. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dnal/core.h"

static volatile sig_atomic_t stop_signal, terms;

static void say(const char *msg)
{
    ssize_t rc = write(STDERR_FILENO, msg, strlen(msg));
    (void)rc;
}

static void on_alarm(int sig)
{
    (void)sig;
    say("dnal: error: not stopped within the grace period after the signal (blocked?); "
        "exiting now, the last checkpoint is intact\n");
    _exit(DNAL_EXIT_CHECKPOINTED);
}

static void on_stop(int sig)
{
    if (sig != SIGUSR1) {
        if (terms++ > 0) {
            say("dnal: error: second stop signal: exiting now, the last checkpoint is intact\n");
            _exit(DNAL_EXIT_CHECKPOINTED);
        }
        alarm(DNAL_STOP_GRACE_S);
    }
    if (!stop_signal)
        stop_signal = sig;
}

void dnal_stop_install(void)
{
    struct sigaction sa = {.sa_handler = on_stop};
    sigemptyset(&sa.sa_mask);
    /* no SA_RESTART: a blocking read returns EINTR to the thread that took it */
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct sigaction al = {.sa_handler = on_alarm};
    sigemptyset(&al.sa_mask);
    sigaction(SIGALRM, &al, NULL);
}

void dnal_stop_request(int sig)
{
    if (!stop_signal)
        stop_signal = sig;
}

int dnal_stop_requested(void)
{
    return stop_signal;
}

void dnal_stop_check(const char *doing)
{
    int sig = stop_signal;
    if (!sig)
        return;
    printf("stopped signal=%d before the first step (while %s): nothing to checkpoint, exit %d\n",
           sig, doing, DNAL_EXIT_CHECKPOINTED);
    fflush(stdout);
    dnal_fatal(DNAL_EXIT_CHECKPOINTED, "stopped by signal %d while %s, before the first step; "
               "nothing was lost (run the same command again, or --resume)", sig, doing);
}
