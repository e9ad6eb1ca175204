/* The portal's /cost pages (to be filled in). */
#include "portal/portal_int.h"

int portal_cost_route(struct page *pg)
{
    return portal_not_found(pg);
}
