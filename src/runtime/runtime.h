/*
 * runtime: how a service described by its manifest (`pave.yaml`) is run. Today this is the
 * Kubernetes renderer: runtime_render_k8s() turns a service's canonical manifest JSON (as the
 * catalog stores it) into the Kubernetes objects that would run it in one environment — a
 * Deployment, a Service, and when the manifest asks for them an Ingress, a PodDisruptionBudget
 * and a NetworkPolicy — all in the namespace "<team>-<env>". docs/kubernetes.md says which
 * manifest field becomes which object field.
 *
 * The renderer is pure: it reads no store, opens no connection and applies nothing to a cluster.
 * It builds jansson values and leaves printing (YAML documents, a JSON List) to the caller, so
 * the API and the CLI share one rendering. Drivers that actually run services (local sandbox,
 * a cluster) will live here too, each behind an ops struct.
 *
 * Ownership: returned values belong to the caller (json_decref). Threading: no shared state;
 * safe to call from any thread.
 */
#ifndef PAVE_RUNTIME_H
#define PAVE_RUNTIME_H

#include <jansson.h>

#include "core/core.h"

/* Host of the platform registry in default image references ("<host>/<service>:<env>"). */
#define RUNTIME_REGISTRY_HOST "pave-registry.local"
/* Namespace of the cluster's ingress controller, allowed in by exposed services' policies. */
#define RUNTIME_INGRESS_NAMESPACE "ingress-nginx"

/*
 * Renders the Kubernetes objects for one service in one environment. manifest_json is the
 * catalog's canonical JSON of a validated manifest; team (NULL: metadata.team) and env are DNS
 * labels naming the namespace "<team>-<env>"; image is the container image reference (NULL or
 * "": RUNTIME_REGISTRY_HOST "/<service>:<env>").
 * returns: a JSON array of objects in apply order (Deployment, Service, Ingress,
 * PodDisruptionBudget, NetworkPolicy), owned by the caller; NULL with err set: CORE_E_INVAL for
 * malformed JSON, a bad team, env or image, or a manifest the renderer cannot express;
 * CORE_E_NOMEM.
 */
json_t *runtime_render_k8s(const char *manifest_json, const char *team, const char *env,
                           const char *image, struct core_err *err);

#endif
