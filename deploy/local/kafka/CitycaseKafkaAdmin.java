// Tiny admin helper for deploy/local/kafka.sh, compiled once into the cache.
// One JVM does the readiness check and all topic work, which keeps a no-op
// `kafka.sh up` around a second (kafka-topics would need one JVM per topic).
//
//   ready         <bootstrap> <timeoutMs>
//   ensure-topics <bootstrap> <timeoutMs> name:partitions:replication ...
//   list          <bootstrap> <timeoutMs>
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.errors.TopicExistsException;

public final class CitycaseKafkaAdmin {
    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: ready|ensure-topics|list <bootstrap> <timeoutMs> [name:partitions:rf ...]");
            System.exit(2);
        }
        String cmd = args[0];
        int timeoutMs = Integer.parseInt(args[2]);
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "citycase-local-admin");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, timeoutMs);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, Math.min(timeoutMs, 10_000));
        int rc;
        try (Admin admin = Admin.create(props)) {
            switch (cmd) {
                case "ready" -> {
                    admin.describeCluster().nodes().get();
                    admin.listTopics().names().get();
                    rc = 0;
                }
                case "ensure-topics" -> rc = ensureTopics(admin, List.of(args).subList(3, args.length));
                case "list" -> {
                    Set<String> names = admin.listTopics().names().get();
                    Map<String, TopicDescription> d = admin.describeTopics(names).allTopicNames().get();
                    new TreeMap<>(d).forEach((n, t) -> System.out.println(n + "\t" + t.partitions().size() + " partitions"));
                    rc = 0;
                }
                default -> {
                    System.err.println("unknown command: " + cmd);
                    rc = 2;
                }
            }
        } catch (ExecutionException e) {
            System.err.println("kafka admin: " + e.getCause());
            rc = 1;
        }
        System.exit(rc);
    }

    private static int ensureTopics(Admin admin, List<String> specs) throws Exception {
        Set<String> existing = admin.listTopics().names().get();
        List<NewTopic> missing = new ArrayList<>();
        Map<String, Integer> wanted = new TreeMap<>();
        for (String spec : specs) {
            String[] p = spec.split(":");
            if (p.length != 3) throw new IllegalArgumentException("bad topic spec: " + spec);
            wanted.put(p[0], Integer.parseInt(p[1]));
            if (!existing.contains(p[0])) {
                missing.add(new NewTopic(p[0], Integer.parseInt(p[1]), Short.parseShort(p[2])));
            }
        }
        int rc = 0;
        for (var e : admin.createTopics(missing).values().entrySet()) {
            try {
                e.getValue().get();
                System.out.println("created topic " + e.getKey());
            } catch (ExecutionException ex) {
                if (!(ex.getCause() instanceof TopicExistsException)) {
                    System.err.println("cannot create topic " + e.getKey() + ": " + ex.getCause());
                    rc = 1;
                }
            }
        }
        // Never alter existing topics (adding partitions would remap keys); just flag drift.
        Map<String, TopicDescription> d = admin.describeTopics(wanted.keySet()).allTopicNames().get();
        for (var e : wanted.entrySet()) {
            int have = d.get(e.getKey()).partitions().size();
            if (have != e.getValue()) {
                System.err.println("warning: topic " + e.getKey() + " has " + have + " partitions, wanted "
                        + e.getValue() + " (run `kafka.sh reset` to recreate)");
            }
        }
        return rc;
    }
}
