//! MinIO round trip through the `object_store` crate (the storage path of checkpoints).

use fjord_e2e::{ClusterOptions, Error, TestCluster};
use futures::TryStreamExt as _;
use object_store::path::Path;
use object_store::{ObjectStore as _, ObjectStoreExt as _, PutPayload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_list_get_delete_and_missing_bucket() -> anyhow::Result<()> {
    let cluster = TestCluster::start(
        ClusterOptions::new("object-store")
            .nodes(1)
            .node_agent(env!("CARGO_BIN_EXE_fjord-node-agent")),
    )?;
    let s3 = cluster.s3()?;
    let store = s3.object_store()?;
    s3.verify_bucket(&s3.bucket).await?;

    let key = Path::from("e2e/checkpoints/chk-1/_metadata");
    let payload = b"fjord checkpoint metadata \x00\x01\x02".to_vec();
    store.put(&key, PutPayload::from(payload.clone())).await?;
    store
        .put(&Path::from("e2e/other"), PutPayload::from_static(b"x"))
        .await?;

    let listed: Vec<_> = store
        .list(Some(&Path::from("e2e/checkpoints")))
        .try_collect()
        .await?;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].location, key);
    assert_eq!(listed[0].size, payload.len() as u64);

    let got = store.get(&key).await?.bytes().await?;
    assert_eq!(got.as_ref(), payload.as_slice());

    store.delete(&key).await?;
    let err = store.get(&key).await.expect_err("object was deleted");
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "{err:?}"
    );
    let remaining: Vec<_> = store.list(Some(&Path::from("e2e"))).try_collect().await?;
    assert_eq!(remaining.len(), 1);

    // A bucket that does not exist gives an error that says so.
    let err = s3
        .verify_bucket("no-such-bucket")
        .await
        .expect_err("bucket must be missing");
    assert!(matches!(err, Error::BucketMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-bucket"), "{err}");

    cluster.stop()?;
    Ok(())
}
