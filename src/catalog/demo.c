/* The demo organization `pave up` loads: two teams, three services, two users. */
#include "catalog/catalog.h"

#include <string.h>

static const char *const demo_manifests[][2] = {
    {"demo/payments-api.yaml",
     "apiVersion: pave/v1\n"
     "kind: Service\n"
     "metadata:\n"
     "  name: payments-api\n"
     "  team: payments\n"
     "  tier: 1\n"
     "  description: Card payments API\n"
     "  tags: { cost-center: cc-1234, data-classification: confidential }\n"
     "spec:\n"
     "  build: { pipeline: .pave/pipeline.yml }\n"
     "  run:\n"
     "    command: [\"./bin/payments-api\"]\n"
     "    ports: [{ name: http, port: 8080, protocol: http }]\n"
     "    health: { path: /healthz, interval: 5s, timeout: 1s }\n"
     "    resources: { cpu: 0.5, memory: 256Mi }\n"
     "    env: { LOG_LEVEL: info }\n"
     "    secrets: [DB_PASSWORD]\n"
     "  replicas: 2\n"
     "  rollout: { strategy: rolling, maxSurge: 1, maxUnavailable: 0 }\n"
     "  expose: { host: payments.internal, paths: [\"/\"] }\n"
     "  dependencies:\n"
     "    - service: ledger\n"
     "    - resource: postgres\n"
     "      name: payments-db\n"
     "  slo: { availability: 99.9, latencyP99: 300ms }\n"
     "  docs: docs/\n"},
    {"demo/ledger.yaml",
     "apiVersion: pave/v1\n"
     "kind: Service\n"
     "metadata:\n"
     "  name: ledger\n"
     "  team: payments\n"
     "  tier: 1\n"
     "  description: Double-entry ledger for every money movement\n"
     "  tags: { cost-center: cc-1234, data-classification: confidential }\n"
     "spec:\n"
     "  run:\n"
     "    command: [\"./bin/ledger\"]\n"
     "    ports: [{ name: http, port: 8081 }]\n"
     "    health: { path: /healthz, interval: 5s, timeout: 1s }\n"
     "    resources: { cpu: 1, memory: 512Mi }\n"
     "  replicas: 3\n"
     "  dependencies:\n"
     "    - resource: postgres\n"
     "      name: ledger-db\n"
     "  slo: { availability: 99.95, latencyP99: 200ms }\n"},
    {"demo/auth-service.yaml",
     "apiVersion: pave/v1\n"
     "kind: Service\n"
     "metadata:\n"
     "  name: auth-service\n"
     "  team: identity\n"
     "  tier: 2\n"
     "  description: Sign-in, sessions and tokens for customer accounts\n"
     "  tags: { cost-center: cc-2001, data-classification: internal }\n"
     "spec:\n"
     "  run:\n"
     "    command: [\"./bin/auth-service\"]\n"
     "    ports: [{ name: http, port: 8090 }]\n"
     "    health: { path: /healthz, interval: 10s, timeout: 2s }\n"
     "    resources: { cpu: 0.25, memory: 128Mi }\n"
     "  replicas: 2\n"
     "  dependencies:\n"
     "    - resource: redis\n"
     "      name: sessions-cache\n"
     "  slo: { availability: 99.9, latencyP99: 150ms }\n"},
};

int catalog_demo_load(struct catalog *cat, struct core_err *err)
{
    const struct catalog_actor *sys = &catalog_actor_system;
    enum catalog_change ch;
    int rc = catalog_env_defaults(cat, err);
    if (rc)
        return rc;
    if ((rc = catalog_team_create(cat, sys, "payments", "Payments",
                                  "Card payments, ledger and payouts", &ch, err)) ||
        (rc = catalog_team_create(cat, sys, "identity", "Identity",
                                  "Accounts, sign-in and authorization", &ch, err)) ||
        (rc = catalog_user_create(cat, sys, "alice", "Alice (payments)", false, &ch, err)) ||
        (rc = catalog_user_create(cat, sys, "bob", "Bob (identity)", false, &ch, err)) ||
        (rc = catalog_member_add(cat, sys, "payments", "alice", &ch, err)) ||
        (rc = catalog_member_add(cat, sys, "identity", "bob", &ch, err)))
        return rc;
    for (size_t i = 0; i < sizeof(demo_manifests) / sizeof(demo_manifests[0]); i++) {
        struct catalog_manifest m;
        struct schema_diags d;
        catalog_manifest_init(&m);
        schema_diags_init(&d);
        const char *text = demo_manifests[i][1];
        rc = catalog_manifest_parse(demo_manifests[i][0], text, strlen(text), &m, &d, err);
        if (!rc)
            rc = catalog_service_apply(cat, sys, &m, demo_manifests[i][0], &ch, &d, err);
        if (rc && d.n > 0)
            core_err_set(err, rc, "%s:%d:%d: %s", d.items[0].file, d.items[0].line,
                         d.items[0].col, d.items[0].message);
        catalog_manifest_release(&m);
        schema_diags_release(&d);
        if (rc)
            return rc;
    }
    return 0;
}
