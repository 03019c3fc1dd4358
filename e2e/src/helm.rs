//! Running the stack's `helm` (built by `e2e/stack up`) against its API server, and a release
//! guard that uninstalls on drop.

use crate::env::StackEnv;
use crate::kubectl::{Kubectl, Output};
use std::path::Path;
use std::process::Command;

/// The stack's `helm` bound to its kubeconfig.
#[derive(Debug, Clone)]
pub struct Helm {
    bin: String,
    kubeconfig: String,
}

impl Helm {
    /// The stack's helm; an error names what is missing (`HELM`, its binary, `KUBECONFIG`).
    pub fn new(env: &StackEnv) -> Result<Self, String> {
        let bin = env.get("HELM").map_err(|e| e.to_string())?;
        if !Path::new(bin).is_file() {
            return Err(format!(
                "HELM={bin} does not exist; re-run `e2e/stack up` (it builds helm)"
            ));
        }
        Ok(Self {
            bin: bin.to_string(),
            kubeconfig: env
                .get("KUBECONFIG")
                .map_err(|e| e.to_string())?
                .to_string(),
        })
    }

    /// Run `helm ARGS...`.
    pub fn run(&self, args: &[&str]) -> std::io::Result<Output> {
        let out = Command::new(&self.bin)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()?;
        Ok(Output {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// On drop (also when the test fails): `helm uninstall --wait --timeout TIMEOUT` of the release,
/// then, when `finalizers` is given, the finalizers left on the namespace's pipelines and
/// detectors are removed (with no operator left to run them), so that the namespace can go.
pub struct Release<'a> {
    /// The helm that installed it.
    pub helm: Helm,
    /// Release name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// `--timeout` of the uninstall (helm's default is `5m0s`).
    pub timeout: &'static str,
    /// Whose kubectl drops the Helios resources' finalizers after the uninstall.
    pub finalizers: Option<&'a Kubectl>,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let _ = self.helm.run(&[
            "uninstall",
            &self.name,
            "-n",
            &self.namespace,
            "--wait",
            "--timeout",
            self.timeout,
        ]);
        if let Some(kubectl) = self.finalizers {
            for kind in ["ap", "detector"] {
                kubectl.drop_finalizers(kind, &self.namespace);
            }
        }
    }
}
