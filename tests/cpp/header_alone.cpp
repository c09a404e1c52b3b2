// include/rsock.hpp compiles on its own (no other include before it).
#include "rsock.hpp"

int rsock_hpp_alone(void);
int rsock_hpp_alone(void) {
    rsock::token t(std::nothrow);
    return t.cancelled() ? 1 : 0;
}
