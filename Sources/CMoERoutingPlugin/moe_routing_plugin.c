#include "moe_routing_plugin.h"
