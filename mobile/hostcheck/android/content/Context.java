// A stand-in for Android's Context, which the generated go.Seq refers to;
// the host JVM has none.
package android.content;

public class Context {}
