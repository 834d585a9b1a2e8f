//! The `anno` binary as an operator meets it: help, first start, signals,
//! restarts, health checks.

use crate::harness::{random_hex, wait_ready};
use anno_client::Client;
use anno_client::anno_api::tenant::CreateTenantRequest;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_anno");

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

struct Server {
    child: Child,
    stderr: mpsc::Receiver<String>,
    url: String,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        let port = free_port();
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data_dir)
            .env_clear()
            .env("ANNO_LOG_FORMAT", "text")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start anno serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Server { child, stderr: rx, url: format!("http://127.0.0.1:{port}") }
    }

    /// Everything printed to stderr so far.
    fn output(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn terminate(mut self) -> Vec<String> {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "anno serve exited with {status} on SIGTERM");
                break;
            }
            assert!(Instant::now() < deadline, "anno serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.output()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn healthcheck(url: &str) -> bool {
    Command::new(BIN)
        .args(["healthcheck", url, "--timeout", "2"])
        .env_clear()
        .status()
        .expect("run healthcheck")
        .success()
}

#[test]
fn help_teaches_the_commands() {
    let out = Command::new(BIN).arg("--help").output().expect("anno --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "migrate", "healthcheck", "--config", "ANNO_", "/v1/admin/tenants"] {
        assert!(help.contains(word), "--help does not mention {word}:\n{help}");
    }
    let out = Command::new(BIN).args(["serve", "--service", "nonsense"]).output().expect("anno serve");
    assert!(!out.status.success());
    let out = Command::new(BIN).arg("config").output().expect("anno config");
    assert!(String::from_utf8_lossy(&out.stdout).contains("verification_ttl_seconds"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_an_admin_key_once_and_data_survives_restarts() {
    let data_dir = std::env::temp_dir().join(format!("anno-cli-{}", random_hex(8)));
    let server = Server::start(&data_dir);
    wait_ready(&server.url).await;
    assert!(healthcheck(&server.url));
    let printed = server.output().join("\n");
    let admin_key = printed
        .split_whitespace()
        .find(|w| w.starts_with("anno_admin_"))
        .unwrap_or_else(|| panic!("no admin key printed on first start:\n{printed}"))
        .to_owned();
    let suffix = random_hex(4);
    let created = Client::new(&server.url)
        .with_credential(&admin_key)
        .create_tenant(&CreateTenantRequest {
            name: "Acme".into(),
            domain: format!("acme-{suffix}.example.com"),
            contact_email: "ops@acme.example.com".into(),
            plan: None,
        })
        .await
        .expect("the printed admin key works");
    let logs = server.terminate().join("\n");
    assert!(!logs.contains(&created.api_key.secret), "a tenant key reached the logs");
    assert!(!healthcheck(&format!("http://{}", server_addr_of(&logs).unwrap_or("127.0.0.1:1"))));

    let server = Server::start(&data_dir);
    wait_ready(&server.url).await;
    let tenant = Client::new(&server.url).with_credential(&created.api_key.secret);
    let me = tenant.me().await.expect("the tenant's key works after a restart");
    assert_eq!(me.tenant.id, created.tenant.id);
    let admin = Client::new(&server.url).with_credential(&admin_key);
    assert_eq!(admin.get_tenant(&created.tenant.id).await.unwrap().name, "Acme");
    let logs = server.terminate().join("\n");
    assert!(!logs.contains("anno_admin_"), "the admin key was printed again:\n{logs}");
    let _ = std::fs::remove_dir_all(&data_dir);
}

fn server_addr_of(logs: &str) -> Option<&str> {
    logs.lines().find(|l| l.contains("listening")).and_then(|l| l.split("addr=").nth(1)).map(|s| s.trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_platform_keeps_its_data_across_restarts() {
    let mut p = crate::harness::Platform::embedded().await;
    let t = p.onboard().await;
    p.restart().await;
    let me = p.client(&t.api_key.secret).me().await.expect("the key works after a restart");
    assert_eq!(me.tenant.id, t.tenant.id);
    assert!(p.admin().get_tenant(&t.tenant.id).await.is_ok(), "the configured admin key still works");
    p.finish().await;
}
