//! Running `kubectl` against the stack's API server, as a user would.

use crate::env::{StackEnv, StackError};
use std::io::Write;
use std::process::{Command, Stdio};

/// The outcome of one `kubectl` run.
#[derive(Debug, Clone)]
pub struct Output {
    /// Whether kubectl exited 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// A `kubectl` bound to the stack's kubeconfig.
#[derive(Debug, Clone)]
pub struct Kubectl {
    kubeconfig: String,
}

impl Kubectl {
    /// A kubectl for the stack (checks the API server is reachable first).
    pub fn new(env: &StackEnv) -> Result<Self, StackError> {
        env.require_reachable("kube-apiserver", "KUBE_APISERVER")?;
        Ok(Self {
            kubeconfig: env.get("KUBECONFIG")?.to_string(),
        })
    }

    /// Run `kubectl ARGS...`, feeding `stdin` when given.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> std::io::Result<Output> {
        let mut child = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        Ok(Output {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// `kubectl apply -f -` of a manifest.
    pub fn apply(&self, manifest: &str) -> std::io::Result<Output> {
        self.run(&["apply", "-f", "-"], Some(manifest))
    }
}

impl Kubectl {
    /// Run and require success, returning stdout; the error names the command and its stderr.
    pub fn ok(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let out = self
            .run(args, stdin)
            .map_err(|e| format!("kubectl {}: {e}", args.join(" ")))?;
        if out.success {
            Ok(out.stdout)
        } else {
            Err(format!(
                "kubectl {} failed: {}",
                args.join(" "),
                out.stderr.trim()
            ))
        }
    }

    /// Best effort: remove the finalizers of every object of `kind` in `namespace`, so a test
    /// that stopped its operator early does not leave the namespace stuck terminating.
    pub fn drop_finalizers(&self, kind: &str, namespace: &str) {
        let names = self
            .ok(&["get", kind, "-n", namespace, "-o", "name"], None)
            .unwrap_or_default();
        for obj in names.lines().filter(|l| !l.is_empty()) {
            let _ = self.run(
                &[
                    "patch",
                    obj,
                    "-n",
                    namespace,
                    "--type",
                    "merge",
                    "-p",
                    r#"{"metadata":{"finalizers":null}}"#,
                ],
                None,
            );
        }
    }

    /// Install (server-side apply) the checked-in CRDs and wait until both are Established.
    pub fn install_crds(&self) -> Result<(), String> {
        let dir = crate::repo_root().join("crds").join("yaml");
        let dir = dir.to_string_lossy();
        self.ok(
            &["apply", "--server-side", "--force-conflicts", "-f", &dir],
            None,
        )?;
        self.ok(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/anomalypipelines.helios.dev",
                "crd/detectors.helios.dev",
            ],
            None,
        )?;
        Ok(())
    }

    /// Wait (one bounded `kubectl wait --for=create`) until kube-controller-manager's
    /// serviceaccount controller has created the `default` ServiceAccount of `namespace`. With
    /// the API server's ServiceAccount admission plugin on, a bare Pod created in a new namespace
    /// before then is refused ("serviceaccount default not found"); controllers retry, a test
    /// that creates a Pod itself waits here first.
    pub fn wait_default_service_account(
        &self,
        namespace: &str,
        timeout_secs: u32,
    ) -> Result<(), String> {
        self.ok(
            &[
                "wait",
                "-n",
                namespace,
                "serviceaccount/default",
                "--for=create",
                &format!("--timeout={timeout_secs}s"),
            ],
            None,
        )
        .map(drop)
        .map_err(|e| {
            format!(
                "{e}\nthe ServiceAccount default of {namespace} was not created within \
                 {timeout_secs} s (is kube-controller-manager's serviceaccount controller running?)"
            )
        })
    }

    /// Create a uniquely named namespace that is deleted when the guard drops.
    pub fn temp_namespace(&self, prefix: &str) -> Result<TempNamespace, String> {
        let name = format!("{prefix}-{}", unique_suffix());
        self.ok(&["create", "namespace", &name], None)?;
        Ok(TempNamespace {
            kubectl: self.clone(),
            name,
        })
    }
}

/// A namespace created for one test and deleted (without waiting) when dropped.
#[derive(Debug)]
pub struct TempNamespace {
    kubectl: Kubectl,
    /// The namespace's name.
    pub name: String,
}

impl Drop for TempNamespace {
    fn drop(&mut self) {
        let _ = self
            .kubectl
            .run(&["delete", "namespace", &self.name, "--wait=false"], None);
    }
}

/// A short random-enough suffix for names (time and process based, no extra dependency).
pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{:x}{n}", std::process::id() % 0xffff, nanos % 0xfffff)
}
