/* SPDX-License-Identifier: MIT */
/*
 * The booked-GPU step function of a pool or a cap, as an AVL tree of change
 * points (time -> level from that time until the next point; 0 before the
 * first). The tree finds the point at or before an instant in O(log n); the
 * nodes are also threaded in time order (prev/next), so a window is walked
 * point by point without going back to the root, which is what keeps a
 * check at O(log n + k) however long the history is. The tree never holds a
 * redundant point (same level as the one before, or a leading 0), so its
 * size is exactly the number of changes. Pruning moves the start of the
 * timeline to a horizon: the point in force at the horizon is moved onto it,
 * everything before is freed, and later bookings are clipped to the
 * horizon, so that releasing an allocation that began before it cannot
 * drive a forgotten level below zero.
 */
#include "daemon/timeline.h"
#include "daemon/timefmt.h"
#include "daemon/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

struct node {
	int64_t key;
	int64_t level;
	struct node *left, *right;	/* the AVL tree */
	struct node *prev, *next;	/* time order */
	int height;
};

struct timeline {
	struct node *root;
	struct node *head, *tail;
	size_t size;
	int64_t horizon;	/* nothing is kept, nor booked, before it */
};

struct timeline *timeline_new(void)
{
	struct timeline *t = xcalloc(1, sizeof(*t));
	t->horizon = TIME_MIN;
	return t;
}

void timeline_free(struct timeline *t)
{
	if (t == NULL)
		return;
	struct node *n = t->head;
	while (n != NULL) {
		struct node *next = n->next;
		free(n);
		n = next;
	}
	free(t);
}

size_t timeline_size(const struct timeline *t)
{
	return t->size;
}

/* AVL primitives. Recursion depth is the tree height (< 1.45 log2 n). */

static int height(const struct node *n)
{
	return n != NULL ? n->height : 0;
}

static void fix_height(struct node *n)
{
	int l = height(n->left), r = height(n->right);
	n->height = 1 + (l > r ? l : r);
}

static struct node *rotate_right(struct node *n)
{
	struct node *l = n->left;
	n->left = l->right;
	l->right = n;
	fix_height(n);
	fix_height(l);
	return l;
}

static struct node *rotate_left(struct node *n)
{
	struct node *r = n->right;
	n->right = r->left;
	r->left = n;
	fix_height(n);
	fix_height(r);
	return r;
}

static struct node *rebalance(struct node *n)
{
	fix_height(n);
	int bf = height(n->left) - height(n->right);
	if (bf > 1) {
		if (height(n->left->left) < height(n->left->right))
			n->left = rotate_left(n->left);
		return rotate_right(n);
	}
	if (bf < -1) {
		if (height(n->right->right) < height(n->right->left))
			n->right = rotate_right(n->right);
		return rotate_left(n);
	}
	return n;
}

static struct node *tree_insert(struct node *root, struct node *n)
{
	if (root == NULL)
		return n;
	if (n->key < root->key)
		root->left = tree_insert(root->left, n);
	else
		root->right = tree_insert(root->right, n);
	return rebalance(root);
}

static struct node *tree_remove_min(struct node *root, struct node **min)
{
	if (root->left == NULL) {
		*min = root;
		return root->right;
	}
	root->left = tree_remove_min(root->left, min);
	return rebalance(root);
}

/*
 * Unhooks n (keys are unique) and puts its successor node itself in its
 * place rather than copying keys around, so that the time-order links of
 * every other node stay valid.
 */
static struct node *tree_remove(struct node *root, const struct node *n)
{
	if (root == n) {
		struct node *l = n->left, *r = n->right, *m;
		if (r == NULL)
			return l;
		r = tree_remove_min(r, &m);
		m->left = l;
		m->right = r;
		return rebalance(m);
	}
	if (n->key < root->key)
		root->left = tree_remove(root->left, n);
	else
		root->right = tree_remove(root->right, n);
	return rebalance(root);
}

/* Builds a perfectly balanced tree from the next count nodes of the list. */
static struct node *tree_build(struct node **cur, size_t count)
{
	if (count == 0)
		return NULL;
	struct node *left = tree_build(cur, count / 2);
	struct node *root = *cur;
	*cur = root->next;
	root->left = left;
	root->right = tree_build(cur, count - count / 2 - 1);
	fix_height(root);
	return root;
}

struct timeline *timeline_clone(const struct timeline *src)
{
	struct timeline *t = timeline_new();
	struct node *last = NULL;

	t->horizon = src->horizon;
	for (const struct node *s = src->head; s != NULL; s = s->next) {
		struct node *n = xcalloc(1, sizeof(*n));
		n->key = s->key;
		n->level = s->level;
		n->prev = last;
		if (last)
			last->next = n;
		else
			t->head = n;
		last = n;
	}
	t->tail = last;
	t->size = src->size;
	struct node *cur = t->head;
	t->root = tree_build(&cur, t->size);
	return t;
}

/* The last point at or before x, or NULL. */
static struct node *floor_node(const struct timeline *t, int64_t x)
{
	struct node *n = t->root, *best = NULL;
	while (n != NULL) {
		if (n->key <= x) {
			best = n;
			n = n->right;
		} else {
			n = n->left;
		}
	}
	return best;
}

static int64_t level_before(const struct node *n)
{
	return n->prev != NULL ? n->prev->level : 0;
}

/* The point at x, inserted with the level in force at x if missing. */
static struct node *ensure_point(struct timeline *t, int64_t x)
{
	struct node *p = floor_node(t, x);
	if (p != NULL && p->key == x)
		return p;
	struct node *n = xmalloc(sizeof(*n));
	n->key = x;
	n->level = p != NULL ? p->level : 0;
	n->left = n->right = NULL;
	n->height = 1;
	n->prev = p;
	n->next = p != NULL ? p->next : t->head;
	if (n->prev != NULL)
		n->prev->next = n;
	else
		t->head = n;
	if (n->next != NULL)
		n->next->prev = n;
	else
		t->tail = n;
	t->root = tree_insert(t->root, n);
	t->size++;
	return n;
}

static void unlink_node(struct timeline *t, struct node *n)
{
	if (n->prev != NULL)
		n->prev->next = n->next;
	else
		t->head = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	else
		t->tail = n->prev;
	t->size--;
}

static void remove_point(struct timeline *t, struct node *n)
{
	t->root = tree_remove(t->root, n);
	unlink_node(t, n);
	free(n);
}

static void drop_if_redundant(struct timeline *t, struct node *n)
{
	if (n->level == level_before(n))
		remove_point(t, n);
}

void timeline_add(struct timeline *t, int64_t start, int64_t end, int64_t units)
{
	/* What lies before the horizon is forgotten, bookings included. */
	if (start < t->horizon)
		start = t->horizon;
	if (units == 0 || start >= end)
		return;
	struct node *a = ensure_point(t, start);
	struct node *b = ensure_point(t, end);
	for (struct node *n = a; n != b; n = n->next) {
		if (!i64_add(n->level, units, &n->level) || n->level < 0) {
			fprintf(stderr, "timeline: level out of range at %" PRId64
				" after adding %" PRId64 " over [%" PRId64 ",%" PRId64 ")\n",
				n->key, units, start, end);
			abort();
		}
	}
	/*
	 * Every point strictly inside moved with its predecessor, so only the
	 * two edges can have become redundant. b first: dropping a leaves the
	 * comparison of its successor unchanged (a had its predecessor's level).
	 */
	drop_if_redundant(t, b);
	drop_if_redundant(t, a);
}

int64_t timeline_at(const struct timeline *t, int64_t x)
{
	const struct node *n = floor_node(t, x);
	return n != NULL ? n->level : 0;
}

int64_t timeline_max(const struct timeline *t, int64_t start, int64_t end)
{
	const struct node *n = floor_node(t, start);
	int64_t max = n != NULL ? n->level : 0;
	for (n = n != NULL ? n->next : t->head; n != NULL && n->key < end; n = n->next)
		if (n->level > max)
			max = n->level;
	return max;
}

/* The capacity inside [from, until), rounded down to whole nodes. */
static int64_t usable_units(const struct capacity *c)
{
	if (c->units <= 0)
		return 0;
	return c->node > 1 ? c->units / c->node * c->node : c->units;
}

int64_t capacity_at(const struct capacity *c, int64_t x)
{
	if (x < c->from || x >= c->until)
		return 0;
	return usable_units(c);
}

/* level + units <= cap, without overflowing. */
static bool level_fits(int64_t level, int64_t units, int64_t cap)
{
	int64_t sum;
	if (!i64_add(level, units, &sum))
		return units < 0;
	return sum <= cap;
}

static bool segment_fits(const struct timeline *t, int64_t units, int64_t cap,
			 int64_t start, int64_t end)
{
	return start >= end || level_fits(timeline_max(t, start, end), units, cap);
}

bool timeline_fits(const struct timeline *t, const struct capacity *c,
		   int64_t units, int64_t start, int64_t end)
{
	if (start >= end)
		return true;
	/*
	 * Capacity is itself a step: 0, then the usable units over [from,
	 * until), then 0. When from >= until the two zero segments overlap and
	 * cover everything, which is right: such a pool holds nothing.
	 */
	int64_t lo = start > c->from ? start : c->from;
	int64_t hi = end < c->until ? end : c->until;
	return segment_fits(t, units, 0, start, end < c->from ? end : c->from) &&
	       segment_fits(t, units, usable_units(c), lo, hi) &&
	       segment_fits(t, units, 0, start > c->until ? start : c->until, end);
}

int timeline_earliest(const struct timeline *t, const struct capacity *c,
		      int64_t units, int64_t from, int64_t duration,
		      int64_t limit, int64_t *out)
{
	if (units <= 0 || duration <= 0)
		return -EINVAL;
	int64_t cap = usable_units(c);
	/*
	 * Levels are never negative and there is no capacity outside [from,
	 * until), so the window must lie inside it: s >= c->from and
	 * s + duration <= min(limit, c->until), i.e. s <= last.
	 */
	int64_t end = limit < c->until ? limit : c->until;
	int64_t last;
	if (!level_fits(0, units, cap) || !i64_sub(end, duration, &last))
		return -ENOSPC;
	int64_t s = from > c->from ? from : c->from;

	/*
	 * Invariant: level is the level at s and next the first point after s.
	 * Each point is looked at once: a blocked window moves s past the
	 * blocking point, and the scan resumes from there, never from the root.
	 */
	const struct node *n = floor_node(t, s);
	int64_t level = n != NULL ? n->level : 0;
	const struct node *next = n != NULL ? n->next : t->head;
	for (;;) {
		if (s > last)
			return -ENOSPC;
		if (!level_fits(level, units, cap)) {
			/* Blocked at s: the next start to try is a drop low enough. */
			while (next != NULL && !level_fits(next->level, units, cap)) {
				if (next->key > last)
					return -ENOSPC;
				next = next->next;
			}
			if (next == NULL)
				return -ENOSPC;
		} else {
			int64_t e = s + duration;	/* s <= last: no overflow */
			while (next != NULL && next->key < e &&
			       level_fits(next->level, units, cap))
				next = next->next;
			if (next == NULL || next->key >= e) {
				*out = s;
				return 0;
			}
			/* next blocks [s, e); retry from it (it fails at once). */
		}
		s = next->key;
		level = next->level;
		next = next->next;
	}
}

void timeline_prune(struct timeline *t, int64_t horizon)
{
	if (horizon <= t->horizon)
		return;
	t->horizon = horizon;
	struct node *p = floor_node(t, horizon);
	if (p == NULL)
		return;
	size_t dropped = 0;
	for (struct node *n = t->head; n != p; n = n->next)
		dropped++;
	size_t kept = t->size - dropped;
	if (dropped > 0 && dropped >= kept / 4) {
		/* Most of the tree goes: free the prefix and rebuild, O(n). */
		struct node *n = t->head;
		while (n != p) {
			struct node *next = n->next;
			free(n);
			n = next;
		}
		p->prev = NULL;
		t->head = p;
		t->size = kept;
		struct node *cur = p;
		t->root = tree_build(&cur, kept);
	} else {
		while (t->head != p)
			remove_point(t, t->head);
	}
	/*
	 * No point lies in (p->key, horizon], so moving p onto the horizon
	 * keeps the tree ordered; the timeline now starts there.
	 */
	p->key = horizon;
	if (p->level == 0)
		remove_point(t, p);
}

void timeline_steps(const struct timeline *t, int64_t from, int64_t to,
		    void (*cb)(void *arg, int64_t start, int64_t end, int64_t level),
		    void *arg)
{
	if (from >= to)
		return;
	const struct node *n = floor_node(t, from);
	int64_t level = n != NULL ? n->level : 0;
	int64_t cur = from;
	for (n = n != NULL ? n->next : t->head; n != NULL && n->key < to; n = n->next) {
		cb(arg, cur, n->key, level);
		cur = n->key;
		level = n->level;
	}
	cb(arg, cur, to, level);
}

/*
 * Checks every invariant of the structure (for the unit tests, which
 * declare it themselves): returns NULL, or what is broken.
 */
static const char *check_tree(const struct node *n, const struct node **prev,
			      size_t *count)
{
	if (n == NULL)
		return NULL;
	const char *err = check_tree(n->left, prev, count);
	if (err != NULL)
		return err;
	if (n->prev != *prev)
		return "tree order and list order differ";
	if (*prev != NULL && (*prev)->key >= n->key)
		return "keys out of order";
	int l = height(n->left), r = height(n->right);
	if (n->height != 1 + (l > r ? l : r))
		return "wrong height";
	if (l - r > 1 || r - l > 1)
		return "unbalanced";
	if (n->level < 0)
		return "negative level";
	if (n->level == level_before(n))
		return "redundant point";
	*prev = n;
	(*count)++;
	return check_tree(n->right, prev, count);
}

const char *timeline__check(const struct timeline *t);

const char *timeline__check(const struct timeline *t)
{
	const struct node *prev = NULL;
	size_t count = 0;
	const char *err = check_tree(t->root, &prev, &count);
	if (err != NULL)
		return err;
	if (prev != t->tail)
		return "wrong tail";
	if ((t->head == NULL) != (t->root == NULL) ||
	    (t->head != NULL && t->head->prev != NULL))
		return "wrong head";
	if (count != t->size)
		return "wrong size";
	if (t->head != NULL && t->head->key < t->horizon)
		return "point before the horizon";
	return NULL;
}
