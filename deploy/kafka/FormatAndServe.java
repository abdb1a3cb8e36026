// FormatAndServe - the cloud's Kafka broker in one JVM: on its first start, format its
// storage (what `kafka-storage format` does: meta.properties and the SCRAM credentials in
// the metadata log), then run the broker (kafka.Kafka). A JVM of its own for the format
// tool cost every new cloud about 1.5 s of CPU and 5-25 s of wall time on a loaded
// machine before the broker's JVM could even start (docs/testing.md, "Test time").
//
//   java -cp KAFKA-JARS:LAUNCHER-JAR FormatAndServe [FORMAT-ARGS...] -- SERVER-PROPERTIES
//
// FORMAT-ARGS are StorageTool's ("format", "-c", ...); none: the storage is formatted
// already. A failed format ends the JVM with the tool's message and exit code 1, before
// the broker starts. Compiled once by deploy/kafka/broker (docs/bus.md).
import java.util.Arrays;

public final class FormatAndServe {
    public static void main(String[] args) throws Exception {
        int sep = Arrays.asList(args).indexOf("--");
        if (sep < 0) {
            System.err.println("usage: FormatAndServe [FORMAT-ARGS...] -- SERVER-PROPERTIES");
            System.exit(2);
        }
        if (sep > 0) {
            int rc;
            try {
                rc = kafka.tools.StorageTool.execute(Arrays.copyOfRange(args, 0, sep), System.out);
            } catch (RuntimeException e) {   // the tool's own failures (TerseFailure, FormatterException)
                System.err.println("formatting the storage failed: " + e.getMessage());
                rc = 1;
            }
            if (rc != 0) {
                System.exit(rc);
            }
        }
        kafka.Kafka.main(Arrays.copyOfRange(args, sep + 1, args.length));
    }
}
