//! The Fjord Kubernetes operator (work in progress: desired objects, lifecycle and reconcile
//! loop land in the next commits).
