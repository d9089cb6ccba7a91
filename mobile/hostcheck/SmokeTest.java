// SmokeTest drives the gobind-generated Java API of package mobile on the
// host JVM, through the same JNI glue an Android app loads (built for
// linux/amd64 by check.sh): two nodes on loopback, a real file sent from
// one to the other, callbacks from Go threads, the bytes verified.
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.peerdrop.mobile.Config;
import org.peerdrop.mobile.Mobile;
import org.peerdrop.mobile.Node;
import org.peerdrop.mobile.Offer;
import org.peerdrop.mobile.Progress;
import org.peerdrop.mobile.Transfer;

public class SmokeTest {
    static int passed = 0, failed = 0;

    // MemOpener is an app's own storage, as a ContentResolver would be:
    // documents in memory named by content URIs, read by position.
    static class MemOpener implements org.peerdrop.mobile.SourceOpener {
        final byte[] data;
        final AtomicInteger opens = new AtomicInteger();
        MemOpener(byte[] data) { this.data = data; }
        @Override public org.peerdrop.mobile.SourceFile open(String uri) throws Exception {
            if (!uri.equals("content://docs/1")) throw new java.io.FileNotFoundException(uri);
            opens.incrementAndGet();
            return new org.peerdrop.mobile.SourceFile() {
                @Override public String name() { return "report.pdf"; }
                @Override public long size() { return data.length; }
                @Override public long modTimeMillis() { return 1700000000000L; }
                @Override public byte[] readAt(long offset, long n) {
                    int from = (int) Math.min(offset, data.length);
                    return Arrays.copyOfRange(data, from, (int) Math.min(data.length, from + n));
                }
                @Override public void close() {}
            };
        }
    }

    static void check(String what, boolean ok) {
        if (ok) {
            passed++;
            System.out.println("ok   " + what);
        } else {
            failed++;
            System.out.println("FAIL " + what);
        }
    }

    // App is what an app implements: every listener, recording threads.
    static class App implements org.peerdrop.mobile.OfferListener, org.peerdrop.mobile.ProgressListener, org.peerdrop.mobile.StateListener, org.peerdrop.mobile.LogListener {
        final String name;
        Node node;
        final Set<String> threads = Collections.synchronizedSet(new HashSet<>());
        final AtomicInteger progress = new AtomicInteger();
        final AtomicInteger devices = new AtomicInteger();
        final AtomicInteger states = new AtomicInteger();
        final AtomicInteger logs = new AtomicInteger();
        final ConcurrentLinkedQueue<Progress> ends = new ConcurrentLinkedQueue<>();
        final AtomicReference<String> acceptError = new AtomicReference<>();
        volatile String savedPath;

        App(String name) { this.name = name; }

        void seen() { threads.add(Thread.currentThread().getName()); }

        @Override public void onOffer(Offer o) {
            seen();
            try {
                node.accept(o.getID(), ""); // calling Go from a Go callback
            } catch (Exception e) {
                acceptError.set(e.toString());
            }
        }
        @Override public void onTransfer(Progress p) {
            seen();
            progress.incrementAndGet();
            if (p.terminal()) {
                if (p.getPath() != null && !p.getPath().isEmpty()) savedPath = p.getPath();
                ends.add(p);
            }
        }
        @Override public void onDevice(Progress p) { seen(); devices.incrementAndGet(); }
        @Override public void onState(byte[] json) { seen(); states.incrementAndGet(); }
        @Override public void onLog(long level, String message) { logs.incrementAndGet(); }
    }

    static Progress waitEnd(App app, String id, long ms) throws InterruptedException {
        long end = System.currentTimeMillis() + ms;
        while (System.currentTimeMillis() < end) {
            for (Progress p : app.ends) {
                if (p.getTransferID().equals(id)) return p;
            }
            Thread.sleep(20);
        }
        return null;
    }

    static byte[] sha256(Path p) throws Exception {
        return MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p));
    }

    public static void main(String[] args) throws Exception {
        Path dir = Files.createTempDirectory("peerdrop-java-");
        try {
            run(dir);
        } catch (Throwable t) {
            t.printStackTrace();
            failed++;
        }
        System.out.println(passed + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }

    static void run(Path dir) throws Exception {
        String homeA = dir.resolve("alice").toString(), homeB = dir.resolve("bob").toString();
        check("not initialized before createIdentity", !Mobile.isInitialized(homeA));
        String aliceID = Mobile.createIdentity(homeA, "alice-phone");
        String bobID = Mobile.createIdentity(homeB, "bob-phone");
        check("identities created", Mobile.isInitialized(homeA) && aliceID.length() > 50 && !aliceID.equals(bobID));

        App alice = new App("alice"), bob = new App("bob");
        Config ca = new Config(homeA, dir.resolve("alice-dl").toString());
        ca.setListen("127.0.0.1:0");
        ca.setLogLevel(-4); // debug: the DHT and ICE layers log
        alice.node = new Node(ca);
        for (App a : new App[]{alice}) {
            a.node.setOfferListener(a); a.node.setProgressListener(a); a.node.setStateListener(a); a.node.setLogListener(a);
        }
        alice.node.start();
        String boot = alice.node.dhtAddr();
        check("alice runs a DHT node on loopback: " + boot, boot.startsWith("127.0.0.1:"));

        Config cb = new Config(homeB, dir.resolve("bob-dl").toString());
        cb.setListen("127.0.0.1:0");
        cb.setBootstrap(boot);
        bob.node = new Node(cb);
        bob.node.setOfferListener(bob); bob.node.setProgressListener(bob); bob.node.setStateListener(bob); bob.node.setLogListener(bob);
        bob.node.start();

        alice.node.addContact(bob.node.contactString("Bob"), "");
        bob.node.addContact(aliceID, "Alice");
        check("contact list", alice.node.contacts().len() == 1 && alice.node.contacts().get(0).getName().equals("Bob"));

        byte[] data = new byte[3 * 1024 * 1024 + 7];
        new Random(1).nextBytes(data);
        Path src = dir.resolve("video.mp4");
        Files.write(src, data);

        // An app retries while the contact's devices are not found yet.
        Progress end = null;
        Transfer t = null;
        long deadline = System.currentTimeMillis() + 60000;
        while (System.currentTimeMillis() < deadline) {
            t = alice.node.sendFile("Bob", src.toString());
            end = waitEnd(alice, t.id(), 45000);
            if (end != null && end.getState().equals("finished")) break;
            Thread.sleep(300);
        }
        check("alice's aggregate finished: " + (end == null ? "none" : end.getState() + " " + end.getError()),
              end != null && end.getState().equals("finished") && end.getBytes() == data.length);
        Progress got = waitEnd(bob, t.id(), 10000);
        check("bob's transfer finished", got != null && got.getState().equals("finished") && got.getDirection().equals("incoming"));
        check("accept from inside the offer callback: " + bob.acceptError.get(), bob.acceptError.get() == null);
        check("bob's file saved in bob-dl", bob.savedPath != null && bob.savedPath.startsWith(dir.resolve("bob-dl").toString()));
        check("the bytes are the same", bob.savedPath != null && Arrays.equals(sha256(Path.of(bob.savedPath)), sha256(src)));
        check("progress callbacks: " + alice.progress.get() + " transfer, " + alice.devices.get() + " device, " + alice.states.get() + " states",
              alice.progress.get() > 0 && alice.devices.get() > 0 && alice.states.get() > 0);
        check("callbacks came from threads other than main: " + alice.threads + " " + bob.threads,
              !alice.threads.isEmpty() && !alice.threads.contains("main") && !bob.threads.contains("main"));
        check("logs arrived", alice.logs.get() + bob.logs.get() > 0);
        check("transfer status JSON", new String(t.statusJSON()).contains("\"state\":\"finished\""));
        check("history JSON", new String(alice.node.historyJSON()).contains("video.mp4"));

        // A file the app reads itself (a content URI), without a copy.
        MemOpener opener = new MemOpener(Arrays.copyOf(data, 1024 * 1024 + 3));
        alice.node.setSourceOpener(opener);
        Transfer tu = alice.node.sendFile("Bob", "content://docs/1");
        Progress endu = waitEnd(alice, tu.id(), 45000);
        check("a content URI sent: " + (endu == null ? "none" : endu.getState() + " " + endu.getError()),
              endu != null && endu.getState().equals("finished") && endu.getBytes() == opener.data.length);
        Progress gotu = waitEnd(bob, tu.id(), 10000);
        check("bob saved it as report.pdf: " + bob.savedPath, gotu != null && bob.savedPath != null && bob.savedPath.endsWith("report.pdf"));
        check("the URI's bytes are the same, opened " + opener.opens.get() + " times",
              bob.savedPath != null && Arrays.equals(Files.readAllBytes(Path.of(bob.savedPath)), opener.data) && opener.opens.get() >= 2);
        try {
            alice.node.sendFile("Bob", "content://docs/404");
            check("an unknown URI is an exception", false);
        } catch (Exception e) {
            check("an unknown URI is an exception: " + e.getMessage(), true);
        }

        try {
            alice.node.sendFile("Carol", src.toString());
            check("unknown contact is an exception", false);
        } catch (Exception e) {
            check("unknown contact is an exception: " + e.getMessage(), true);
        }

        alice.node.setForeground(false);
        alice.node.networkChanged();
        alice.node.setForeground(true);
        alice.node.close();
        bob.node.close();
        check("stopped", !alice.node.isRunning() && !bob.node.isRunning());
    }
}
