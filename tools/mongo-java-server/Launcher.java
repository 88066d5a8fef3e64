// Starts mongo-java-server on a chosen port; the stock main classes always bind 27017.
// Run as a single-file program (no compile step): java -cp 'target/lib/*' Launcher.java [options]
//   --port N            port to bind on 127.0.0.1 (0 picks a free one; default 27017)
//   --h2 FILE           keep data in an H2 file (survives restarts); otherwise in memory
//   --exit-on-stdin-eof exit when standard input closes, so a parent that dies takes us with it
//   --oplog             keep an oplog, so change streams work (off by default: it costs every write)
// Prints one line "LISTENING <port>" on stdout once connections are accepted.
import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

public class Launcher {
    public static void main(String[] args) throws Exception {
        int port = 27017;
        String h2File = null;
        boolean exitOnStdinEof = false;
        boolean oplog = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--port" -> port = Integer.parseInt(args[++i]);
                case "--h2" -> h2File = args[++i];
                case "--exit-on-stdin-eof" -> exitOnStdinEof = true;
                case "--oplog" -> oplog = true;
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        MongoBackend backend = h2File == null ? new MemoryBackend() : new H2Backend(h2File);
        if (oplog) backend.enableOplog();
        MongoServer server = new MongoServer(backend);
        server.bind("127.0.0.1", port);
        // The shutdown hook runs on SIGTERM/SIGINT: closing the backend commits H2's last writes.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.shutdownNow();
            backend.close();
        }));
        System.out.println("LISTENING " + server.getLocalAddress().getPort());
        System.out.flush();
        if (exitOnStdinEof) {
            while (System.in.read() != -1) { /* drain */ }
            System.exit(0);
        }
        Thread.currentThread().join();
    }
}
