package fjord.infra;

import java.io.File;
import java.nio.file.Files;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;

/**
 * An HDFS cluster for tests (scripts/infra/hdfs.sh): a NameNode on 127.0.0.1:PORT and DATANODES
 * DataNodes (their ports chosen by the system), all in this JVM, with their storage under DIR.
 *
 * <p>The first start formats the NameNode; a later start in the same DIR keeps the file system
 * (the DataNodes report their blocks again), so a stop and start is a restart of the same
 * cluster. Prints FJORD-HDFS-STARTED once the NameNode has left safe mode and the DataNodes have
 * registered; shuts down cleanly on SIGTERM.
 *
 * <p>Usage: MiniHdfs DIR PORT [DATANODES]
 */
public final class MiniHdfs {
  private MiniHdfs() {}

  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      System.err.println("usage: MiniHdfs DIR PORT [DATANODES]");
      System.exit(2);
    }
    File dir = new File(args[0]);
    int port = Integer.parseInt(args[1]);
    int dataNodes = args.length > 2 ? Integer.parseInt(args[2]) : 1;
    File formatted = new File(dir, "formatted");
    boolean format = !formatted.exists();

    Configuration conf = new HdfsConfiguration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, new File(dir, "dfs").getAbsolutePath());
    // Loopback only, every port but the NameNode's RPC chosen by the system.
    conf.set("dfs.namenode.http-address", "127.0.0.1:0");
    conf.set("dfs.datanode.address", "127.0.0.1:0");
    conf.set("dfs.datanode.http.address", "127.0.0.1:0");
    conf.set("dfs.datanode.ipc.address", "127.0.0.1:0");
    // One replica per DataNode at most: a one-node cluster writes without waiting for others.
    conf.setInt("dfs.replication", Math.min(dataNodes, 3));
    // Quick restarts: leave safe mode as soon as the blocks are reported.
    conf.setInt("dfs.namenode.safemode.extension", 0);

    MiniDFSCluster cluster =
        new MiniDFSCluster.Builder(conf)
            .nameNodePort(port)
            .numDataNodes(dataNodes)
            .format(format)
            .build();
    Runtime.getRuntime().addShutdownHook(new Thread(cluster::shutdown));
    cluster.waitActive();
    cluster.waitClusterUp();
    if (format) {
      Files.writeString(formatted.toPath(), "formatted\n");
    }
    System.out.println("FJORD-HDFS-STARTED " + cluster.getURI());
    System.out.flush();
    Thread.currentThread().join();
  }
}
