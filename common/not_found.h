/* not_found.h - EC2's `<Kind>.NotFound` naming every id of a request that does not exist. */
#ifndef VIRGA_NOT_FOUND_H
#define VIRGA_NOT_FOUND_H

#include <stddef.h>

#include "err.h"

/* Fill *e with code and "The <what> 'a' does not exist" for one id, "The <what>s 'a, b'
 * do not exist" for several (as EC2 words it: "The instance IDs 'i-a, i-b' do not
 * exist"), each id named once; bracketed: the list in [], as EC2 words images' ("The
 * image ids '[ami-a, ami-b]' do not exist"). Returns -1 (0, e untouched, when n is 0). */
int ids_not_found(verr_t *e, const char *code, const char *what, const char *const *ids, size_t n, int bracketed);

#endif
