//! Where a workload's pods run: node selection, tolerations, affinity, priority and host
//! networking, copied unchanged into the pod template the operator renders.

use k8s_openapi::api::core::v1::{Affinity, Toleration};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Scheduling of a workload's pods; every field maps to the pod spec field of the same name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// Labels a node must carry to run the pods (e.g. a dedicated node pool).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the pods tolerate (e.g. the taint of a dedicated node pool).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub tolerations: Vec<Toleration>,
    /// Node affinity and pod (anti-)affinity rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// The PriorityClass of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub priority_class_name: Option<String>,
    /// Run the pods in their node's network namespace (DNS policy `ClusterFirstWithHostNet`):
    /// for nodes without a pod network; each pod then holds its port on the node, so at most
    /// one such pod of a workload fits a node.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_network: bool,
}
