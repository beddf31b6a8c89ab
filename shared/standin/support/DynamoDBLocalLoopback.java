import java.lang.reflect.Field;

import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

/**
 * Starts DynamoDB Local listening on one host only (127.0.0.1 unless the
 * system property shardline.host says otherwise).
 *
 * DynamoDBLocal.jar has no option for the address it binds: its
 * DynamoDBProxyServer builds a Jetty Server from a port alone, which listens
 * on every interface. This launcher builds the server from the usual command
 * line arguments, sets the host on its Jetty connector and starts it. Unlike
 * the jar's own main it never configures telemetry, so DynamoDB Local sends
 * nothing anywhere (pass -disableTelemetry as well).
 *
 * Compiled by the Go package standin when it installs the stand-ins.
 */
public final class DynamoDBLocalLoopback {
    private DynamoDBLocalLoopback() {
    }

    public static void main(String[] args) throws Exception {
        String host = System.getProperty("shardline.host", "127.0.0.1");
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);
        int connectors = 0;
        for (Connector c : server.getConnectors()) {
            if (c instanceof ServerConnector) {
                ((ServerConnector) c).setHost(host);
                connectors++;
            }
        }
        if (connectors == 0) {
            System.err.println("DynamoDBLocalLoopback: no Jetty ServerConnector to bind to " + host);
            System.exit(2);
        }
        proxy.start();
        if (!server.isStarted()) {
            // DynamoDBProxyServer.start prints the reason (port in use) itself.
            System.exit(1);
        }
        System.out.println("DynamoDBLocalLoopback: listening on " + host);
    }
}
