package fjord.infra;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import jakarta.jms.Connection;
import jakarta.jms.DeliveryMode;
import jakarta.jms.MapMessage;
import jakarta.jms.Message;
import jakarta.jms.MessageConsumer;
import jakarta.jms.MessageProducer;
import jakarta.jms.Queue;
import jakarta.jms.Session;
import jakarta.jms.TextMessage;
import jakarta.jms.BytesMessage;
import org.apache.activemq.ActiveMQConnectionFactory;

/**
 * The test tools' JMS client (OpenWire, independent of the STOMP connector under test).
 *
 * <ul>
 *   <li>{@code publish URL QUEUE}: one persistent text message per stdin line {@code ID<TAB>BODY}
 *       ({@code ID} becomes the JMS correlation id, none if empty), sent synchronously (each
 *       acknowledged by the broker before the next).
 *   <li>{@code drain URL QUEUE}: takes every message of QUEUE (acknowledged), one line
 *       {@code ID<TAB>BODY} each, until the queue stays empty for a second.
 *   <li>{@code depth URL QUEUE}: messages in QUEUE not yet acknowledged (ready and in flight), from
 *       the statistics plugin; 0 for a queue that does not exist.
 * </ul>
 */
public final class ActiveMqTool {
  private ActiveMqTool() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 3) {
      System.err.println("usage: ActiveMqTool publish|drain|depth OPENWIRE_URL QUEUE");
      System.exit(2);
    }
    ActiveMQConnectionFactory factory = new ActiveMQConnectionFactory(args[1]);
    factory.setUseAsyncSend(false);
    Connection connection = factory.createConnection();
    try {
      connection.start();
      Session session = connection.createSession(false, Session.CLIENT_ACKNOWLEDGE);
      Queue queue = session.createQueue(args[2]);
      switch (args[0]) {
        case "publish" -> publish(session, queue);
        case "drain" -> drain(session, queue);
        case "depth" -> depth(session, args[2]);
        default -> {
          System.err.println("unknown command " + args[0]);
          System.exit(2);
        }
      }
    } finally {
      connection.close();
    }
  }

  private static void publish(Session session, Queue queue) throws Exception {
    MessageProducer producer = session.createProducer(queue);
    producer.setDeliveryMode(DeliveryMode.PERSISTENT);
    BufferedReader in =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      int tab = line.indexOf('\t');
      String id = tab < 0 ? "" : line.substring(0, tab);
      TextMessage m = session.createTextMessage(tab < 0 ? line : line.substring(tab + 1));
      if (!id.isEmpty()) {
        m.setJMSCorrelationID(id);
      }
      producer.send(m);
    }
  }

  private static void drain(Session session, Queue queue) throws Exception {
    MessageConsumer consumer = session.createConsumer(queue);
    StringBuilder out = new StringBuilder();
    Message m;
    while ((m = consumer.receive(1000)) != null) {
      String id = m.getJMSCorrelationID();
      String body;
      if (m instanceof TextMessage t) {
        body = t.getText();
      } else if (m instanceof BytesMessage b) {
        byte[] bytes = new byte[(int) b.getBodyLength()];
        b.readBytes(bytes);
        body = new String(bytes, StandardCharsets.UTF_8);
      } else {
        body = String.valueOf(m);
      }
      out.append(id == null ? "" : id).append('\t').append(body).append('\n');
      m.acknowledge();
    }
    System.out.print(out);
    System.out.flush();
  }

  private static void depth(Session session, String queue) throws Exception {
    Queue stats = session.createQueue("ActiveMQ.Statistics.Destination." + queue);
    Queue replies = session.createTemporaryQueue();
    MessageConsumer consumer = session.createConsumer(replies);
    MessageProducer producer = session.createProducer(stats);
    Message request = session.createMessage();
    request.setJMSReplyTo(replies);
    producer.send(request);
    Message reply = consumer.receive(3000);
    long size = 0;
    if (reply instanceof MapMessage map) {
      size = map.getLong("size");
    }
    System.out.println(size);
  }
}
