package jucr.embedded;

import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import java.io.IOException;
import java.util.List;

/**
 * Runs mongo-java-server on 127.0.0.1 as the embedded MongoDB.
 *
 * <p>Usage: {@code Launcher <port> memory} or {@code Launcher <port> h2 <file>}. Prints
 * {@code listening on <port>} once it accepts connections and stops when its standard input
 * closes, so a parent that dies (even by SIGKILL) never leaves a server behind.
 */
public final class Launcher {

    /**
     * The version the server reports. The stock {@code ServerVersion.MONGO_5_0} says wire
     * version 8, and pymongo 4.20 refuses servers below wire version 9; MongoDB 5.0 itself
     * speaks wire version 13, which is what we declare. The commands we use behave the same.
     */
    static final MongoVersion MONGO_5_0_WIRE_13 = new MongoVersion() {
        @Override
        public List<Integer> getVersionArray() {
            return List.of(5, 0, 0);
        }

        @Override
        public int getWireVersion() {
            return 13;
        }
    };

    public static void main(String[] args) throws IOException {
        if (args.length < 2 || !(args[1].equals("memory") || (args[1].equals("h2") && args.length == 3))) {
            System.err.println("usage: Launcher <port> memory | Launcher <port> h2 <file>");
            System.exit(2);
        }
        int port = Integer.parseInt(args[0]);
        MongoBackend backend = args[1].equals("memory") ? new MemoryBackend() : new H2Backend(args[2]);
        backend.version(MONGO_5_0_WIRE_13);
        MongoServer server = new MongoServer(backend);
        server.bind("127.0.0.1", port);
        // shutdown() closes the backend, which commits and closes the H2 file.
        Runtime.getRuntime().addShutdownHook(new Thread(server::shutdown));
        System.out.println("listening on " + server.getLocalAddress().getPort());
        System.out.flush();
        while (System.in.read() != -1) {
            // Input is ignored; end of input means the parent is gone.
        }
        System.exit(0);
    }
}
