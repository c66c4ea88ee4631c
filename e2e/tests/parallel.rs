//! Two test clusters at once do not collide: distinct ports, pod address blocks, API servers
//! and stores, and each works.

use std::collections::HashSet;

use fjord_e2e::{ClusterOptions, TestCluster};

fn start(name: &str) -> anyhow::Result<TestCluster> {
    Ok(TestCluster::start(
        ClusterOptions::new(name)
            .nodes(1)
            .node_agent(env!("CARGO_BIN_EXE_fjord-node-agent")),
    )?)
}

fn ports(cluster: &TestCluster) -> anyhow::Result<HashSet<String>> {
    let text = std::fs::read_to_string(cluster.run_dir().join("ports.env"))?;
    Ok(text
        .lines()
        .filter(|l| l.contains("PORT="))
        .filter_map(|l| l.split_once('=').map(|(_, v)| v.to_string()))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_started_at_once_share_nothing() -> anyhow::Result<()> {
    let a = std::thread::spawn(|| start("parallel-a"));
    let b = std::thread::spawn(|| start("parallel-b"));
    let a = a.join().expect("thread a")?;
    let b = b.join().expect("thread b")?;

    let (pa, pb) = (ports(&a)?, ports(&b)?);
    assert_eq!(pa.len(), 8, "{pa:?}");
    assert!(pa.is_disjoint(&pb), "{pa:?} vs {pb:?}");
    assert_ne!(a.pod_ip_block(), b.pod_ip_block());
    assert_ne!(a.setting("FJORD_APISERVER")?, b.setting("FJORD_APISERVER")?);

    for cluster in [&a, &b] {
        let nodes = cluster.kubectl(&["get", "nodes", "-o", "name"], None)?;
        assert_eq!(nodes.trim(), "node/fjord-node-0");
        let s3 = cluster.s3()?;
        s3.verify_bucket(&s3.bucket).await?;
    }
    // Objects written to one store are not in the other.
    use object_store::ObjectStoreExt as _;
    let key = object_store::path::Path::from("only-in-a");
    a.s3()?
        .object_store()?
        .put(&key, object_store::PutPayload::from_static(b"a"))
        .await?;
    let in_b = b.s3()?.object_store()?.head(&key).await;
    assert!(
        matches!(in_b, Err(object_store::Error::NotFound { .. })),
        "{in_b:?}"
    );

    a.stop()?;
    b.stop()?;
    Ok(())
}
