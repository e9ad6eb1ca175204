// Validates every object of a Kubernetes List (JSON file argument, or stdin) against the official
// Kubernetes OpenAPI schemas, through the model classes of the npm package kubernetes-models.
// Exits 0 when every item validates, 1 with the first error otherwise.
import { readFileSync } from 'node:fs';

const models = {
  'apps/v1/Deployment': 'kubernetes-models/apps/v1/Deployment',
  'v1/Service': 'kubernetes-models/v1/Service',
  'networking.k8s.io/v1/Ingress': 'kubernetes-models/networking.k8s.io/v1/Ingress',
  'networking.k8s.io/v1/NetworkPolicy': 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy',
  'policy/v1/PodDisruptionBudget': 'kubernetes-models/policy/v1/PodDisruptionBudget',
  'autoscaling/v2/HorizontalPodAutoscaler':
    'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler',
};

const list = JSON.parse(readFileSync(process.argv[2] ?? 0, 'utf8'));
if (list.apiVersion !== 'v1' || list.kind !== 'List' || !Array.isArray(list.items)) {
  console.error('not a Kubernetes v1 List');
  process.exit(1);
}
for (const item of list.items) {
  const key = `${item.apiVersion}/${item.kind}`;
  const where = `${key} ${item.metadata?.namespace}/${item.metadata?.name}`;
  const path = models[key];
  if (!path) {
    console.error(`${where}: no model for this apiVersion/kind`);
    process.exit(1);
  }
  const mod = await import(path);
  const Model = mod[item.kind] ?? mod.default;
  try {
    new Model(item).validate();
  } catch (e) {
    console.error(`${where}: ${e.message}`);
    if (e.errors) console.error(JSON.stringify(e.errors, null, 2));
    process.exit(1);
  }
  console.log(`ok ${where}`);
}
