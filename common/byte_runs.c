/* byte_runs.c - the class of each byte for byte_runs.h's runs, made by the compiler. */
#include "byte_runs.h"

#define J(c) ((c) >= 0x20 && (c) < 0x80 && (c) != '"' && (c) != '\\')
#define X(c) ((c) >= 0x20 && (c) < 0x80 && (c) != '&' && (c) != '<' && (c) != '>' && (c) != '"' && (c) != '\'')
#define CLASS(c) (unsigned char)((J(c) ? BYTE_JSON_PLAIN : 0) | (X(c) ? BYTE_XML_PLAIN : 0) | \
                                 (J(c) && X(c) ? BYTE_JSON_XML_PLAIN : 0))
#define C4(c) CLASS(c), CLASS((c) + 1), CLASS((c) + 2), CLASS((c) + 3)
#define C16(c) C4(c), C4((c) + 4), C4((c) + 8), C4((c) + 12)
#define C64(c) C16(c), C16((c) + 16), C16((c) + 32), C16((c) + 48)

const unsigned char byte_runs_class[256] = {C64(0), C64(64), C64(128), C64(192)};
