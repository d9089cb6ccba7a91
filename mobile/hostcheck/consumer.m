// consumer.m is a small iOS-style consumer of the generated Objective-C API
// of package mobile: check.sh compiles it with -fsyntax-only against the
// generated headers, so a header that does not parse, or an API that does
// not match what the README shows, fails the check.
#import <Foundation/Foundation.h>
#import "Mobile.objc.h"

@interface AppListener : NSObject <MobileOfferListener, MobileProgressListener, MobileStateListener, MobileLogListener> {
    MobileNode *_node;
}
@property(strong) MobileNode *node;
@end

@implementation AppListener
@synthesize node = _node;
- (void)onOffer:(MobileOffer *)offer {
    NSError *err = nil;
    if (![self.node accept:offer.id_ destPath:@"" error:&err]) {
        NSLog(@"accept %@: %@", offer.name, err);
    }
}
- (void)onTransfer:(MobileProgress *)progress {
    NSLog(@"%@ %@ %lld/%lld", progress.name, progress.state, (long long)progress.bytes, (long long)progress.total);
    if ([progress terminal] && progress.path.length > 0) {
        NSLog(@"saved %@", progress.path);
    }
}
- (void)onDevice:(MobileProgress *)progress {
    NSLog(@"  %@: %@ %.0f B/s relayed=%d", progress.deviceName, progress.state, progress.rate, progress.relayed);
}
- (void)onState:(NSData *)eventJSON {
    NSLog(@"%@", [[NSString alloc] initWithData:eventJSON encoding:NSUTF8StringEncoding]);
}
- (void)onLog:(long)level message:(NSString *)message {
    NSLog(@"[%ld] %@", level, message);
}
@end

static int run(NSString *home, NSString *downloads, NSString *bobContact, NSString *file) {
    NSError *err = nil;
    if (!MobileIsInitialized(home)) {
        NSString *account = MobileCreateIdentity(home, @"iPhone", &err);
        if (err != nil) return 1;
        NSLog(@"account %@", account);
    }
    MobileConfig *cfg = MobileNewConfig(home, downloads);
    cfg.bootstrap = @"192.0.2.10:6882";
    cfg.turnURL = @"turn:turn.example.org:3478?transport=tcp";
    cfg.autoAcceptMaxBytes = 20 << 20;
    cfg.autoAcceptTypes = @"image/";
    MobileNode *node = MobileNewNode(cfg); // as [[MobileNode alloc] init:cfg]
    AppListener *app = [[AppListener alloc] init];
    app.node = node;
    [node setOfferListener:app];
    [node setProgressListener:app];
    [node setStateListener:app];
    [node setLogListener:app];
    if (![node start:&err]) return 1;
    NSLog(@"share: %@", [node contactString:@"Alice"]);
    MobileContact *bob = [node addContact:bobContact name:@"" error:&err];
    if (bob == nil) return 1;
    MobileContactList *contacts = [node contacts:&err];
    for (long i = 0; i < [contacts len]; i++) {
        NSLog(@"contact %@ %@ %lld", [contacts get:i].name, [contacts get:i].id_, (long long)[contacts get:i].addedUnix);
    }
    MobileTransfer *t = [node sendFile:bob.name path:file error:&err];
    if (t == nil) return 1;
    NSLog(@"sending %@", [t id_]);
    [node setForeground:NO];
    [node networkChanged];
    [node setForeground:YES];
    if (![t await:60000 error:&err]) NSLog(@"not sent: %@", err);
    NSLog(@"%@", [[NSString alloc] initWithData:[t statusJSON] encoding:NSUTF8StringEncoding]);
    NSData *history = [node historyJSON:&err];
    NSData *archive = [node exportIdentity:@"correct horse" error:&err];
    NSLog(@"%lu bytes of history, %lu of archive, DHT %@", (unsigned long)history.length, (unsigned long)archive.length, [node dhtAddr]);
    [node resume:@"00112233445566778899aabbccddeeff" error:&err];
    [node stop];
    [node close];
    return 0;
}

int main(int argc, char **argv) {
    @autoreleasepool {
        return run(@"/tmp/home", @"/tmp/downloads", @"peerdrop:…?name=Bob", @"/tmp/photo.jpg");
    }
}
