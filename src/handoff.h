/*
 * Cross-thread hand-off to the service thread: any thread posts a task (a
 * function and its argument); the service thread runs the tasks, oldest
 * first, when LWS_CALLBACK_EVENT_WAIT_CANCELLED wakes it. The poster calls
 * the wake function (lws_cancel_service) itself after posting, so this file
 * knows nothing of lws. The queue is swapped out whole under the lock and
 * run with the lock released, as Redis bio.c hands back completions.
 */
#ifndef GW_HANDOFF_H
#define GW_HANDOFF_H

struct handoff;

typedef void (*handoff_fn)(void *ctx, void *arg);

struct handoff *handoff_new(void);
/* main thread, after every poster stopped: runs nothing, frees the queue
 * (pending tasks get fn(NULL, arg) so they can free arg) */
void handoff_free(struct handoff *h);
/* any thread. Returns 0, or -1 when out of memory (the task is not queued). */
int handoff_post(struct handoff *h, handoff_fn fn, void *arg);
/* service thread: runs every task queued so far with fn(ctx, arg) */
void handoff_run(struct handoff *h, void *ctx);

#endif
