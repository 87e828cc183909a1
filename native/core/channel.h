/* The launcher's end of the channel to the adapter (docs/protocol.md):
 * connect, authenticate, receive the configuration, then read control
 * messages on a thread of its own while records flow through stream.c. */
#ifndef SPY_CHANNEL_H
#define SPY_CHANNEL_H

#include <stddef.h>

#define SPY_PROTOCOL_VERSION 1
#define SPY_CHANNEL_MAX_LINE (1024 * 1024)
#define SPY_CHANNEL_HANDSHAKE_SECONDS 60

struct spy_channel_info {
    const char *python_version;     /* "3.12.1" */
    const char *mode;               /* "dlopen" or "preload" */
    const char *executable;         /* the interpreter, as given */
    int free_threaded;
};

/* When SPYTHON_CHANNEL and SPYTHON_TOKEN are set: removes them from the
 * environment, connects, shakes hands and attaches the socket to the
 * record stream.  Any failure ends the process (status 125) with a
 * message: the script never runs unaudited.  Returns 1 when connected,
 * 0 when no channel was asked for. */
int spy_channel_open_from_environment(const struct spy_channel_info *info);

/* The `config` object of the reader's welcome ("{}" without a channel). */
const char *spy_channel_config(size_t *len);

enum spy_prompt_answer {
    SPY_PROMPT_DENY,
    SPY_PROMPT_ALLOW,
    SPY_PROMPT_ALLOW_ALWAYS,
};

/* Asks the reader (the editor) whether an event may proceed and waits
 * for its answer.  Returns 0 with *answer, or -1 without a channel.
 * Call without the GIL. */
int spy_channel_prompt(const char *event, const char *target,
                       enum spy_prompt_answer *answer);

/* The channel this process talks to (both NULL without one). */
void spy_channel_address(const char **path, const char **token);

/* Answers a control message it cannot accept with an `error` message
 * (docs/protocol.md) echoing the start of the line; the channel stays up. */
void spy_channel_protocol_error(const char *message, const char *line,
                                size_t n);

/* Tells the reader the process is exiting normally with this status. */
void spy_channel_send_exit(int status);

#endif /* SPY_CHANNEL_H */
