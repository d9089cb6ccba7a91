#!/usr/bin/env bash
# Checks the gomobile bindings of package mobile as far as a Linux machine
# with no Android NDK and no Xcode can (the real AAR and xcframework are
# built by mobile/Makefile on machines that have them, see
# .github/workflows/mobile.yml):
#
#   1. gobind generates Java and ObjC with no output on stderr and no
#      silently skipped member ("// skipped" in the generated code);
#   2. the library type-checks for android/arm64 and ios/arm64;
#   3. the generated Java and Go glue, built for linux/amd64 against the
#      JDK's JNI, runs SmokeTest.java on the host JVM: two nodes on
#      loopback, a real file, callbacks from Go threads, bytes verified;
#   4. the generated ObjC headers compile in a syntax check (clang with the
#      GNUstep Foundation headers) against consumer.m.
#
# Needs: go, a JDK (javac, java), gcc, clang and GNUstep's base headers
# (.ci/run installs them). Usage: mobile/hostcheck/check.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
work=$(mktemp -d)
glue="$root/.build/hostglue" # inside the module (for its go.mod); ./... skips dot directories
trap 'rm -rf "$work" "$root/.build"' EXIT

echo "--- 1. gobind (Java, ObjC)"
# The same Java package as mobile/Makefile gives the AAR.
go tool gobind -lang=go,java,objc -javapkg=org.peerdrop -outdir="$work/out" ./mobile 2>"$work/gobind.err"
if [ -s "$work/gobind.err" ]; then
  echo "gobind wrote to stderr:" >&2; cat "$work/gobind.err" >&2; exit 1
fi
if grep -rn "skipped" "$work/out/java" "$work/out/src/gobind"/*.h; then
  echo "gobind skipped the members above: they would be missing from the app's API" >&2; exit 1
fi
echo "java classes: $(cd "$work/out/java/org/peerdrop/mobile" && ls | tr '\n' ' ')"

echo "--- 2. type-check for android/arm64 and ios/arm64"
for target in android/arm64 ios/arm64; do
  # vet type-checks mobile and, for their export data, every package it links.
  GOOS=${target%/*} GOARCH=${target#*/} CGO_ENABLED=1 CC=false go vet -tags netgo,osusergo ./mobile/...
  echo "$target: ok"
done

echo "--- 3. Java smoke test on the host JVM through the generated JNI glue"
javac_bin=$(readlink -f "$(command -v javac)")
java_home=${JAVA_HOME:-$(dirname "$(dirname "$javac_bin")")}
mkdir -p "$glue"
cp "$work/out/src/gobind"/*.go "$work/out/src/gobind"/*.c "$work/out/src/gobind"/*.h "$glue"/
rm -f "$glue"/*_darwin.* "$glue"/*.m
# The Android files, built for the host: no GOOS suffix, no liblog.
for f in "$glue"/*_android.go "$glue"/*_android.c; do mv "$f" "${f/_android./_host.}"; done
sed -i 's|//#cgo LDFLAGS: -llog||' "$glue"/seq_host.go
# The JDK declares AttachCurrentThread(JavaVM*, void**, …), the NDK (JNIEnv**, …).
CGO_CFLAGS="-I$java_home/include -I$java_home/include/linux -I$here/include -D__GOBIND_ANDROID__ -Wno-incompatible-pointer-types" \
  go build -buildmode=c-shared -o "$work/lib/libgojni.so" ./.build/hostglue
mkdir -p "$work/classes"
javac -nowarn -d "$work/classes" "$here/android/content/Context.java" "$work/out/java/go"/*.java "$work/out/java/org/peerdrop/mobile"/*.java "$here/SmokeTest.java"
java -Djava.library.path="$work/lib" -cp "$work/classes" SmokeTest

echo "--- 4. ObjC headers: clang syntax check with GNUstep"
# GNUstep ships no Foundation module, so the headers' "@import Foundation;"
# becomes the equivalent #import for this check.
mkdir -p "$work/objc"
for h in "$work/out/src/gobind"/*.h; do
  sed 's|^@import Foundation;|#import <Foundation/Foundation.h>|' "$h" >"$work/objc/$(basename "$h")"
done
# Debian's GNUstep builds on GCC's Objective-C runtime, whose headers live
# in GCC's include directory: expose only its objc/ to clang. That runtime
# has no ARC, which the headers assume (as gomobile compiles them): under
# manual reference counting clang warns that their object properties have
# no ownership attribute, so that one warning is off; all others are errors.
mkdir -p "$work/objcrt"
ln -s "$(gcc -print-file-name=include)/objc" "$work/objcrt/objc"
clang -fsyntax-only -x objective-c -isystem "$work/objcrt" -fobjc-runtime=gcc -Werror -Wno-objc-property-no-attribute -Wno-unused-command-line-argument \
  $(gnustep-config --objc-flags | sed 's/-MMD\|-MP//g') -I"$work/objc" "$here/consumer.m"
echo "objc headers and consumer.m: ok"
