/* SPDX-License-Identifier: MIT */
/*
 * The usage report and the exports (Kueue queues, Open OnDemand balances),
 * made from the API's JSON by pure functions: the CLI fetches, these
 * compute, the CLI prints or writes. The daemon's figures are exact
 * integer GPU-seconds and stay so; a ratio is integer basis points, a
 * GPU-hour figure a decimal written without floating point.
 */
#include "tools/export.h"
#include "daemon/timefmt.h"
#include "daemon/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* ---- small helpers --------------------------------------------------------- */

static int64_t jnum(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? json_integer_value(v) : 0;
}

static const char *js(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* An instant of the API's JSON (ISO 8601 with its offset); TIME_MIN when absent. */
static int64_t jtime(const json_t *o, const char *key)
{
	const char *s = js(o, key);
	int64_t t;
	if (s == NULL || time_parse(s, 0, &t, NULL) != 0)
		return TIME_MIN;
	return t;
}

bool utilisation_bp(int64_t used, int64_t consumed, int64_t *bp)
{
	if (consumed <= 0 || used < 0)
		return false;
	/* used * 10000 / consumed, rounded half up; 128 bits hold the product */
	unsigned __int128 num = (unsigned __int128)(uint64_t)used * 20000u + (uint64_t)consumed;
	unsigned __int128 q = num / ((unsigned __int128)(uint64_t)consumed * 2u);
	*bp = q > (unsigned __int128)INT64_MAX ? INT64_MAX : (int64_t)q;
	return true;
}

const char *bp_format(int64_t bp, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRId64 ".%02" PRId64 "%%", bp / 100, bp % 100);
	return buf;
}

/* ---- report usage ---------------------------------------------------------- */

static const char *const amount_keys[] = {
	"granted_gpu_seconds", "committed_gpu_seconds", "consumed_gpu_seconds",
	"used_gpu_seconds", "expired_gpu_seconds",
};
#define N_AMOUNTS (sizeof(amount_keys) / sizeof(amount_keys[0]))

/* The row of arr whose consortium (NULL: none) and gpu match, made if missing. */
static json_t *row_of(json_t *arr, const char *consortium, const char *gpu)
{
	size_t i;
	json_t *r;

	json_array_foreach(arr, i, r) {
		const char *c = js(r, "consortium"), *g = js(r, "gpu");
		if (g && strcmp(g, gpu) == 0 &&
		    (consortium ? c && strcmp(c, consortium) == 0 : c == NULL))
			return r;
	}
	r = consortium ? json_pack("{s:s, s:s}", "consortium", consortium, "gpu", gpu)
		       : json_pack("{s:s}", "gpu", gpu);
	for (size_t k = 0; k < N_AMOUNTS; k++)
		json_object_set_new(r, amount_keys[k], json_integer(0));
	json_array_append_new(arr, r);
	return r;
}

/* Adds the amounts of q into r; false on overflow. */
static bool row_add(json_t *r, const json_t *q)
{
	for (size_t k = 0; k < N_AMOUNTS; k++) {
		int64_t sum;
		if (!i64_add(jnum(r, amount_keys[k]), jnum(q, amount_keys[k]), &sum))
			return false;
		json_object_set_new(r, amount_keys[k], json_integer(sum));
	}
	return true;
}

static void row_ratio(json_t *r)
{
	int64_t bp;
	bool has = utilisation_bp(jnum(r, "used_gpu_seconds"), jnum(r, "consumed_gpu_seconds"), &bp);
	json_object_set_new(r, "utilisation_bp", has ? json_integer(bp) : json_null());
}

json_t *report_usage(const json_t *quota, const char *phase, const char **cause)
{
	json_t *rows = json_array(), *totals = json_array(), *q, *r;
	size_t i;

	json_array_foreach(quota, i, q) {
		const char *c = js(q, "consortium"), *g = js(q, "gpu"), *p = js(q, "phase");
		if (c == NULL || g == NULL || (phase && (p == NULL || strcmp(p, phase) != 0)))
			continue;
		if (!row_add(row_of(rows, c, g), q) || !row_add(row_of(totals, NULL, g), q)) {
			*cause = "the sums overflow";
			json_decref(rows);
			json_decref(totals);
			return NULL;
		}
	}
	json_array_foreach(rows, i, r)
		row_ratio(r);
	json_array_foreach(totals, i, r)
		row_ratio(r);
	return json_pack("{s:s, s:o, s:s, s:o, s:o}", "report", "usage",
			 "phase", phase ? json_string(phase) : json_null(),
			 "utilisation", "used/consumed", "rows", rows, "totals", totals);
}

/* A CSV field: quoted when it holds a comma, a quote or a line end. */
static void csv_field(FILE *f, const char *s, bool last)
{
	if (strpbrk(s, ",\"\r\n") == NULL) {
		fputs(s, f);
	} else {
		fputc('"', f);
		for (; *s; s++) {
			if (*s == '"')
				fputc('"', f);
			fputc(*s, f);
		}
		fputc('"', f);
	}
	fputs(last ? "\r\n" : ",", f);
}

static void csv_row(FILE *f, const json_t *r)
{
	char h[48];
	int64_t bp;
	const json_t *u = json_object_get(r, "utilisation_bp");

	csv_field(f, js(r, "consortium") ? js(r, "consortium") : "total", false);
	csv_field(f, js(r, "gpu"), false);
	for (size_t k = 0; k < N_AMOUNTS; k++)
		csv_field(f, gpu_hours_format(jnum(r, amount_keys[k]), h, sizeof(h)), false);
	bp = json_is_integer(u) ? json_integer_value(u) : -1;
	csv_field(f, bp >= 0 ? bp_format(bp, h, sizeof(h)) : "", true);
}

void report_usage_csv(const json_t *report, FILE *f)
{
	size_t i;
	json_t *r;

	fputs("consortium,gpu,granted_gpu_hours,committed_gpu_hours,consumed_gpu_hours,"
	      "used_gpu_hours,expired_gpu_hours,utilisation\r\n", f);
	json_array_foreach(json_object_get(report, "rows"), i, r)
		csv_row(f, r);
	json_array_foreach(json_object_get(report, "totals"), i, r)
		csv_row(f, r);
}

/* ---- Kueue ----------------------------------------------------------------- */

#define K8S_NAME_MAX 253	/* a DNS subdomain: ResourceFlavor, ClusterQueue */
#define K8S_LABEL_MAX 63	/* a DNS label: namespaces, LocalQueues */
#define KUEUE_API "kueue.x-k8s.io/v1beta2"
#define GPU_RESOURCE "nvidia.com/gpu"
#define MODEL_LABEL "gpuledger/gpu-model"

char *k8s_name(const char *s, size_t max)
{
	struct buf b = {0};

	/* lower case; every run of other characters one '-'; none at the ends */
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			buf_append(&b, &c, 1);
		else if (b.len > 0 && b.data[b.len - 1] != '-')
			buf_append(&b, "-", 1);
	}
	while (b.len > 0 && b.data[b.len - 1] == '-')
		b.data[--b.len] = '\0';
	if (b.len == 0 || b.len > max) {
		buf_free(&b);
		return NULL;
	}
	return buf_take(&b);
}

/* A label value: the model itself when it is one (63 of [A-Za-z0-9._-], alnum ends). */
static char *label_value(const char *s)
{
	size_t n = strlen(s);
	bool ok = n > 0 && n <= K8S_LABEL_MAX;
	for (size_t i = 0; ok && i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		ok = alnum || ((i > 0 && i + 1 < n) && (c == '-' || c == '_' || c == '.'));
	}
	return ok ? xstrdup(s) : k8s_name(s, K8S_LABEL_MAX);
}

static json_t *labels(void)
{
	return json_pack("{s:s}", "app.kubernetes.io/managed-by", "gpuledger");
}

/* The GPU models of the pools, in pool order, each once. */
static json_t *gpu_models(const json_t *program)
{
	json_t *models = json_array(), *p, *m;
	size_t i, j;

	json_array_foreach(json_object_get(program, "pools"), i, p) {
		const char *g = js(p, "gpu");
		bool seen = g == NULL;
		json_array_foreach(models, j, m)
			seen = seen || strcmp(json_string_value(m), g) == 0;
		if (!seen)
			json_array_append_new(models, json_string(g));
	}
	return models;
}

/* Names made from ids: distinct ids must stay distinct names. */
static int names_of(const json_t *ids, size_t max, const char *what, json_t **out, char **cause)
{
	json_t *names = json_array(), *id;
	size_t i, j;

	json_array_foreach(ids, i, id) {
		char *n = k8s_name(json_string_value(id), max);
		if (n == NULL) {
			*cause = xasprintf("%s '%s' has no Kubernetes name (letters or digits, at most %zu)",
					   what, json_string_value(id), max);
			goto fail;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(json_string_value(json_array_get(names, j)), n) == 0) {
				*cause = xasprintf("%ss '%s' and '%s' would both be named '%s' in Kubernetes",
						   what, json_string_value(json_array_get(ids, j)),
						   json_string_value(id), n);
				free(n);
				goto fail;
			}
		}
		json_array_append_new(names, json_string(n));
		free(n);
	}
	*out = names;
	return 0;
fail:
	json_decref(names);
	return -EINVAL;
}

/* The phase containing at, or NULL. */
static const char *phase_at(const json_t *program, int64_t at)
{
	size_t i;
	json_t *ph;

	json_array_foreach(json_object_get(program, "phases"), i, ph)
		if (jtime(ph, "start") <= at && at < jtime(ph, "end"))
			return js(ph, "id");
	return NULL;
}

/*
 * Whether the consortium is out at `at`, as the program shows it now: an
 * elimination running since an instant at or before it, or one ahead that
 * takes effect by it.
 */
static bool eliminated_at(const json_t *c, int64_t at)
{
	const char *st = js(c, "status");
	int64_t since = jtime(c, "since"), from = jtime(c, "eliminated_from");

	if (st && strcmp(st, "eliminated") == 0 && since <= at)
		return true;
	return from != TIME_MIN && from <= at;
}

/*
 * Whether its metered use has spent its budget in the phase: for every
 * GPU model it holds quota of there, used >= granted - expired.
 */
static bool budget_spent(const json_t *quota, const char *consortium, const char *phase)
{
	size_t i, n = 0;
	json_t *q;

	if (phase == NULL)
		return false;
	json_array_foreach(quota, i, q) {
		const char *c = js(q, "consortium"), *p = js(q, "phase");
		if (!c || !p || strcmp(c, consortium) != 0 || strcmp(p, phase) != 0 ||
		    jnum(q, "granted_gpu_seconds") <= 0)
			continue;
		n++;
		if (jnum(q, "used_gpu_seconds") <
		    jnum(q, "granted_gpu_seconds") - jnum(q, "expired_gpu_seconds"))
			return false;
	}
	return n > 0;
}

/* GPUs of the consortium's allocations of model that run at at. */
static int64_t gpus_at(const json_t *allocs, const char *consortium, const char *gpu, int64_t at)
{
	int64_t sum = 0;
	size_t i;
	json_t *a;

	json_array_foreach(allocs, i, a) {
		const char *c = js(a, "consortium"), *g = js(a, "gpu"), *st = js(a, "state");
		if (!c || !g || strcmp(c, consortium) != 0 || strcmp(g, gpu) != 0 ||
		    (st && strcmp(st, "cancelled") == 0))
			continue;
		if (jtime(a, "start") <= at && at < jtime(a, "end"))
			sum += jnum(a, "gpus");
	}
	return sum;
}

static json_t *resource_flavor(const char *name, const char *model)
{
	char *value = label_value(model);
	json_t *o = json_pack("{s:s, s:s, s:{s:s, s:o}, s:{s:{s:s}}}",
			      "apiVersion", KUEUE_API, "kind", "ResourceFlavor",
			      "metadata", "name", name, "labels", labels(),
			      "spec", "nodeLabels", MODEL_LABEL, value);
	free(value);
	return o;
}

static json_t *cluster_queue(const struct kueue_input *in, const json_t *c, const char *name,
			     const json_t *models, const json_t *flavors, const char *phase)
{
	const char *id = js(c, "id");
	json_t *fl = json_array(), *m;
	size_t i;

	json_array_foreach(models, i, m) {
		int64_t n = gpus_at(in->allocations, id, json_string_value(m), in->at);
		json_array_append_new(fl, json_pack("{s:O, s:[{s:s, s:I}]}",
			"name", json_array_get(flavors, i),
			"resources", "name", GPU_RESOURCE, "nominalQuota", (json_int_t)n));
	}
	bool hold = eliminated_at(c, in->at) || budget_spent(in->quota, id, phase);
	json_t *spec = json_pack("{s:{s:{s:s}}, s:s}",
				 "namespaceSelector", "matchLabels",
				 "kubernetes.io/metadata.name", name,
				 "stopPolicy", hold ? "Hold" : "None");
	/* a resource group needs a flavor: without pools there is none */
	if (json_array_size(fl) > 0)
		json_object_set_new(spec, "resourceGroups",
				    json_pack("[{s:[s], s:o}]", "coveredResources", GPU_RESOURCE,
					      "flavors", fl));
	else
		json_decref(fl);
	return json_pack("{s:s, s:s, s:{s:s, s:o}, s:o}", "apiVersion", KUEUE_API,
			 "kind", "ClusterQueue", "metadata", "name", name, "labels", labels(),
			 "spec", spec);
}

static json_t *local_queue(const char *name)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:{s:s}}", "apiVersion", KUEUE_API,
			 "kind", "LocalQueue", "metadata", "name", name, "namespace", name,
			 "labels", labels(), "spec", "clusterQueue", name);
}

json_t *kueue_objects(const struct kueue_input *in, char **cause)
{
	json_t *models = gpu_models(in->program), *ids = json_array(), *flavors = NULL,
	       *names = NULL, *out = NULL, *c;
	const char *phase = phase_at(in->program, in->at);
	size_t i;

	json_array_foreach(json_object_get(in->program, "consortia"), i, c)
		json_array_append_new(ids, json_string(js(c, "id") ? js(c, "id") : ""));
	/* flavors are cluster-scoped names; a consortium's name is also its namespace's */
	if (names_of(models, K8S_NAME_MAX, "GPU model", &flavors, cause) ||
	    names_of(ids, K8S_LABEL_MAX, "consortium", &names, cause))
		goto out;
	out = json_array();
	for (i = 0; i < json_array_size(models); i++)
		json_array_append_new(out, resource_flavor(
			json_string_value(json_array_get(flavors, i)),
			json_string_value(json_array_get(models, i))));
	json_array_foreach(json_object_get(in->program, "consortia"), i, c) {
		const char *name = json_string_value(json_array_get(names, i));
		json_array_append_new(out, cluster_queue(in, c, name, models, flavors, phase));
		json_array_append_new(out, local_queue(name));
	}
out:
	json_decref(models);
	json_decref(ids);
	json_decref(flavors);
	json_decref(names);
	return out;
}

/* ---- YAML ------------------------------------------------------------------ */

static int emit(yaml_emitter_t *em, yaml_event_t *ev)
{
	return yaml_emitter_emit(em, ev) ? 0 : -EIO;
}

static int emit_scalar(yaml_emitter_t *em, const char *s, bool plain_ok)
{
	yaml_event_t ev;
	/* no tag: the quoted form must be implicit, the plain one only where asked */
	yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s),
				     plain_ok, 1, plain_ok ? YAML_ANY_SCALAR_STYLE
							   : YAML_DOUBLE_QUOTED_SCALAR_STYLE);
	return emit(em, &ev);
}

/* Strings are quoted, so that "None", "1e3" or "yes" stay strings for every reader. */
static int emit_value(yaml_emitter_t *em, const json_t *v)
{
	yaml_event_t ev;
	const char *key;
	json_t *child;
	size_t i;
	char num[32];
	int rc = 0;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
		rc = emit(em, &ev);
		json_object_foreach((json_t *)v, key, child) {
			if (rc == 0)
				rc = emit_scalar(em, key, true);
			if (rc == 0)
				rc = emit_value(em, child);
		}
		yaml_mapping_end_event_initialize(&ev);
		return rc ? rc : emit(em, &ev);
	case JSON_ARRAY:
		yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
		rc = emit(em, &ev);
		json_array_foreach(v, i, child)
			if (rc == 0)
				rc = emit_value(em, child);
		yaml_sequence_end_event_initialize(&ev);
		return rc ? rc : emit(em, &ev);
	case JSON_STRING:
		return emit_scalar(em, json_string_value(v), false);
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return emit_scalar(em, num, true);
	case JSON_TRUE:
	case JSON_FALSE:
		return emit_scalar(em, json_is_true(v) ? "true" : "false", true);
	default:
		return emit_scalar(em, "null", true);
	}
}

static int write_out(void *data, unsigned char *buffer, size_t size)
{
	return fwrite(buffer, 1, size, data) == size;
}

int yaml_documents(const json_t *items, FILE *f)
{
	yaml_emitter_t em;
	yaml_event_t ev;
	const json_t *o;
	size_t i;
	int rc;

	if (!yaml_emitter_initialize(&em))
		return -EIO;
	yaml_emitter_set_output(&em, write_out, f);
	yaml_emitter_set_unicode(&em, 1);
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	rc = emit(&em, &ev);
	json_array_foreach(items, i, o) {
		if (rc != 0)
			break;
		yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 0);
		rc = emit(&em, &ev);
		if (rc == 0)
			rc = emit_value(&em, o);
		yaml_document_end_event_initialize(&ev, 1);
		if (rc == 0)
			rc = emit(&em, &ev);
	}
	yaml_stream_end_event_initialize(&ev);
	if (rc == 0)
		rc = emit(&em, &ev);
	if (rc == 0 && !yaml_emitter_flush(&em))
		rc = -EIO;
	yaml_emitter_delete(&em);
	return rc;
}

/* ---- Open OnDemand --------------------------------------------------------- */

json_t *ood_balances(const json_t *program, const json_t *quota, const json_t *users,
		     int64_t now)
{
	const char *phase = phase_at(program, now);
	json_t *balances = json_array(), *seen = json_object(), *c, *u, *q;
	size_t i, j;

	json_array_foreach(json_object_get(program, "consortia"), i, c) {
		const char *id = js(c, "id");
		int64_t avail = 0;
		if (id == NULL)
			continue;
		json_array_foreach(quota, j, q) {
			const char *qc = js(q, "consortium"), *qp = js(q, "phase");
			int64_t a = jnum(q, "available_gpu_seconds");
			if (phase && qc && qp && strcmp(qc, id) == 0 && strcmp(qp, phase) == 0 &&
			    a > 0 && !i64_add(avail, a, &avail))
				avail = INT64_MAX;
		}
		/* OnDemand reads the value as an integer: whole GPU-hours, rounded down */
		json_int_t hours = (json_int_t)(avail / 3600);
		json_array_foreach(json_object_get(users, id), j, u) {
			const char *name = json_string_value(u);
			if (name == NULL || json_object_get(seen, name))
				continue;
			json_object_set_new(seen, name, json_true());
			json_array_append_new(balances, json_pack("{s:s, s:s, s:I}", "user", name,
								  "project", id, "value", hours));
		}
	}
	json_decref(seen);
	return json_pack("{s:i, s:I, s:{s:s, s:s}, s:o}", "version", 1,
			 "timestamp", (json_int_t)now, "config", "unit", "GPU-hour",
			 "project_type", "consortium", "balances", balances);
}
