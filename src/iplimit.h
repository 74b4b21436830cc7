/*
 * Open WebSocket connections per peer address, for --max-connections-per-ip.
 * A small chained hash table keyed by the textual address. The table is
 * created on the first connection and freed when the last one closes, so it
 * needs no set-up or tear-down of its own. Pure (no lws); the caller owns
 * the pointer and serialises access (the gateway: service thread only).
 */
#ifndef GW_IPLIMIT_H
#define GW_IPLIMIT_H

#include <stddef.h>

struct ip_table;

/* connections counted for ip (0 when unknown or *t is NULL) */
size_t iplimit_count(const struct ip_table *t, const char *ip);
/* counts one more connection from ip, creating *t if needed; 0 or -1 (ENOMEM) */
int iplimit_add(struct ip_table **t, const char *ip);
/* the table's own copy of ip while it is counted (valid until its count
 * drops to zero), else NULL */
const char *iplimit_key(const struct ip_table *t, const char *ip);
/* counts one connection less; frees *t (and sets it NULL) when it empties */
void iplimit_del(struct ip_table **t, const char *ip);
/* addresses with at least one connection */
size_t iplimit_addresses(const struct ip_table *t);

#endif
