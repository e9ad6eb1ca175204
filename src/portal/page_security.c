/* The portal's /security pages (to be filled in). */
#include "portal/portal_int.h"

int portal_security_route(struct page *pg)
{
    return portal_not_found(pg);
}
