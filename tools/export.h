/* SPDX-License-Identifier: MIT */
/*
 * What `gpuledger report usage` and `gpuledger export` make of the API's
 * answers: pure functions from the daemon's JSON (program, quota rows,
 * allocations) to the JSON of a report, of Kueue objects or of Open
 * OnDemand's balance file, so that the CLI only fetches and prints. Amounts
 * stay exact integers; ratios are integer basis points, rounded half up.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/*
 * Utilisation as the usage report shows it: metered use over the GPU time
 * its allocations have run so far (used / consumed), in basis points
 * (1/100 of a percent) rounded half up. false when consumed is 0 (no
 * ratio).
 */
bool utilisation_bp(int64_t used, int64_t consumed, int64_t *bp);

/* bp as "37.50%" into buf (at least 32 bytes); returns buf. */
const char *bp_format(int64_t bp, char *buf, size_t len);

/*
 * The usage report of quota rows (GET /v1/quota's "quota" array), summed
 * per (consortium, GPU model) over the rows' phases, in the rows' order,
 * and per model over the consortia: {"report":"usage","phase":P|null,
 * "utilisation":"used/consumed","rows":[...],"totals":[...]}, each row
 * {"consortium" (totals: none),"gpu","granted_gpu_seconds",
 * "committed_gpu_seconds","consumed_gpu_seconds","used_gpu_seconds",
 * "expired_gpu_seconds","utilisation_bp":int|null}. NULL with *cause
 * (static) when a sum overflows. New reference.
 */
json_t *report_usage(const json_t *quota, const char *phase, const char **cause);

/* The report as CSV (RFC 4180, CRLF line ends), amounts in GPU-hours. */
void report_usage_csv(const json_t *report, FILE *f);

/* What `export kueue` builds from. */
struct kueue_input {
	const json_t *program;		/* GET /v1/program */
	const json_t *allocations;	/* GET /v1/allocations "allocations" */
	const json_t *quota;		/* GET /v1/quota "quota" */
	int64_t at;			/* the instant whose allocations count */
};

/*
 * Kueue v1beta2 objects: a ResourceFlavor per GPU model of the pools, a
 * ClusterQueue and a LocalQueue (in the namespace named after it) per
 * consortium; nominalQuota of nvidia.com/gpu per flavor = the GPUs of the
 * consortium's allocations that run at `at` (start <= at < end, not
 * cancelled); stopPolicy Hold for a consortium eliminated at `at` or whose
 * metered use has spent its budget in the phase of `at` (used >= granted -
 * expired for each GPU model it has quota of), else None. A JSON array of
 * the objects (new reference), or NULL with *cause (malloc'd) when a name
 * cannot be made a Kubernetes name or two would collide.
 */
json_t *kueue_objects(const struct kueue_input *in, char **cause);

/* The Kubernetes name (RFC 1123, lower case) of s, or NULL (malloc'd). */
char *k8s_name(const char *s, size_t max);

/*
 * Writes each object of items as its own YAML document ("---" before each)
 * through libyaml's emitter, mappings in block style. 0, or -EIO.
 */
int yaml_documents(const json_t *items, FILE *f);

/*
 * Open OnDemand's balance file (OOD_BALANCE_PATH; the dashboard's
 * app/models/balance.rb reads version 1): {"version":1,"timestamp":<Unix
 * seconds>,"config":{"unit":"GPU-hour","project_type":"consortium"},
 * "balances":[{"user":NAME,"project":ID,"value":H}]}, one balance per
 * member user of each consortium (OnDemand shows a user only the balances
 * that name them), H the consortium's available quota summed over the
 * quota rows of the phase running at now, in whole GPU-hours rounded down
 * (OnDemand reads the value as an integer; never more than is there). A
 * user in two consortia gets the first one's. users: an object consortium
 * -> array of user names. New reference.
 */
json_t *ood_balances(const json_t *program, const json_t *quota, const json_t *users,
		     int64_t now);
