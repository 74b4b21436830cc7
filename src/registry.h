/*
 * Groups <-> subscriptions, both directions, as Redis pub/sub keeps them:
 * a hash of groups (one per watched submission key), each with an array of
 * member subscriptions, and each owner (a session) with its own list of
 * subscriptions. Joining, leaving and a session's close are O(1) per
 * subscription; fan-out walks one array. No lws calls: links alone in tests.
 * Service thread only.
 */
#ifndef GW_REGISTRY_H
#define GW_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct registry;
struct reg_group;

struct reg_sub {
	void *owner;              /* the session; not owned */
	struct reg_group *group;  /* set by registry_join */
	struct reg_sub *prev, *next; /* the owner's list */
	size_t idx;               /* position in the group's member array */
	uint32_t filter;          /* bit (1u << gw_pub_type) per wanted type; 0 = all */
	uint64_t last_seq;        /* highest seq already given to the owner */
	int replaying;            /* 1: a replay from the store is under way:
				   * fan-out leaves this subscription alone */
	int legacy;               /* 1: legacy frames; 0: /ws event frames */
	int mode;                 /* enum gw_mode (proto.h): every event, or the
				   * latest state (legacy frames always are) */
	uint64_t qslot;           /* its owner's: where its replaceable frame is
				   * queued (sendq.h); 0: none */
	uint64_t id;              /* the owner's own label (e.g. command id) */
};

struct registry *registry_new(void);
/* frees the groups; every subscription must have left already */
void registry_free(struct registry *r);

/* Adds a new subscription of owner to key's group (created on first join)
 * and to the owner's list *head. Returns NULL on allocation failure. */
struct reg_sub *registry_join(struct registry *r, const char *key, void *owner,
			      struct reg_sub **head);
/* Removes sub from its group (deleted when empty) and from *head; frees it. */
void registry_leave(struct registry *r, struct reg_sub *sub, struct reg_sub **head);
/* Removes all of an owner's subscriptions. */
void registry_leave_all(struct registry *r, struct reg_sub **head);
/* The owner's subscription to key, or NULL. Walks only the owner's list. */
struct reg_sub *registry_owner_find(struct reg_sub *head, const char *key);

struct reg_group *registry_find(const struct registry *r, const char *key);
const char *registry_group_key(const struct reg_group *g);
/* the member array and its length; valid until the next join or leave */
struct reg_sub *const *registry_members(const struct reg_group *g, size_t *n);

/* The group's latest state frame, kept for those who join later so that a
 * connect costs no store read: a new reference to b (NULL: the submission
 * has no state) at seq, whose last event was at unix second at (or later),
 * unless the group already holds a later one. The group drops it when it
 * is deleted. */
void registry_state_set(struct reg_group *g, struct gw_buf *b, uint64_t seq, int64_t at);
/* 1 with that frame (no new reference; NULL: no state), its seq and time
 * once one was set, else 0 */
int registry_state_get(const struct reg_group *g, struct gw_buf **b, uint64_t *seq,
		       int64_t *at);
/* forgets the frame (the store may have deleted the submission since) */
void registry_state_forget(struct reg_group *g);

size_t registry_group_count(const struct registry *r);
size_t registry_sub_count(const struct registry *r);

#endif
