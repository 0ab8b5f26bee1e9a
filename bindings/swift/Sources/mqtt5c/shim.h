/* The module's one header: the installed mqtt5c.h (its directory comes
 * from `pkg-config --cflags mqtt5c`). */
#ifndef MQTT5C_SWIFT_SHIM_H
#define MQTT5C_SWIFT_SHIM_H
#include <mqtt5c.h>
#endif
