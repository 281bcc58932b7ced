"""hack/local-fleet: real kube-apiservers for hub and spokes, upstream Flux CRDs, Flux simulator."""
