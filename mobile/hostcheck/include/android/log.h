/* A stand-in for the NDK's <android/log.h>: the generated glue logs
 * through it; on the host the messages go to stderr. */
#ifndef PEERDROP_HOST_ANDROID_LOG_H
#define PEERDROP_HOST_ANDROID_LOG_H
#include <stdio.h>
#include <stdlib.h>
enum { ANDROID_LOG_DEBUG = 3, ANDROID_LOG_INFO = 4, ANDROID_LOG_WARN = 5, ANDROID_LOG_ERROR = 6, ANDROID_LOG_FATAL = 7 };
#define __android_log_print(prio, tag, ...) (fprintf(stderr, "%s: ", tag), fprintf(stderr, __VA_ARGS__), fputc('\n', stderr))
#endif
