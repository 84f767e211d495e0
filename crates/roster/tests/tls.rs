//! Links over mutual TLS (feature `tls`).
#![cfg(feature = "tls")]

use std::time::Duration;

mod common;
use common::eventually;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use roster::{ClusterConfig, FailureDetection, Node, TlsConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

struct Ca {
    cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        cert: cert.der().clone(),
        issuer: Issuer::new(params, key),
    }
}

fn node_tls(ca: &Ca, trusted: &Ca) -> TlsConfig {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["roster".to_string()])
        .unwrap()
        .signed_by(&key, &ca.issuer)
        .unwrap();
    TlsConfig::new(
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        vec![trusted.cert.clone()],
        "roster",
    )
    .unwrap()
}

fn start(name: &str, tls: TlsConfig, seed: Option<&Node>) -> Node {
    let seeds: Vec<String> = seed
        .map(|n| n.cluster().addr().unwrap().to_string())
        .into_iter()
        .collect();
    let config = ClusterConfig::new("127.0.0.1:0".parse().unwrap(), "secret")
        .seeds(seeds)
        .failure_detection(FailureDetection::Fast)
        .announce_interval(Duration::from_millis(200))
        .tls(tls);
    Node::builder().name(name).cluster(config).start().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_certificates_of_the_cluster_ca_replicate_over_tls() {
    let ca = ca();
    let a = start("a", node_tls(&ca, &ca), None);
    let b = start("b", node_tls(&ca, &ca), Some(&a));
    eventually("linked", || {
        a.cluster().peers().len() == 1 && b.cluster().peers().len() == 1
    })
    .await;
    let p = a.new_process();
    p.register("over-tls", &"yes").unwrap();
    eventually("b sees the name", || {
        b.default_scope().whereis("over-tls") == Some(p.pid())
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused() {
    let (ca, rogue) = (ca(), ca());
    let a = start("a", node_tls(&ca, &ca), None);
    // Trusts the cluster CA, but its own certificate is signed by another one.
    let intruder = start("x", node_tls(&rogue, &ca), Some(&a));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(a.cluster().peers().is_empty());
    assert!(intruder.cluster().peers().is_empty());
    assert!(
        a.cluster().stats().unwrap().handshake_failures
            + intruder.cluster().stats().unwrap().handshake_failures
            > 0
    );
    a.shutdown().await;
    intruder.shutdown().await;
}
