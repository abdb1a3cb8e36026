/* tags.h - EC2 tags stored per service in its own `tags` table:
 *   CREATE TABLE tags (resource_id text, account_id char(12), key text, value text,
 *                      PRIMARY KEY (resource_id, key));
 * The connection's search_path picks the service's table. */
#ifndef VIRGA_TAGS_H
#define VIRGA_TAGS_H

#include <jansson.h>

#include "db.h"

/* Set the tags of tag_set ([{"key","value"}], as describe_tag_spec returns) on a resource. */
int tags_put(db_t *db, const char *resource_id, const char *account, const json_t *tag_set, verr_t *e);
/* {resource_id: [{"key","value"}...]} for the account's resources (every account's when
 * account is NULL). */
json_t *tags_load(db_t *db, const char *account, verr_t *e);

#endif
