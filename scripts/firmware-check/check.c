/* A panic inside the library's panic guard, built with the firmware
 * recipe (scripts/firmware.sh): caught, the fallback returned, destructors
 * run, the last-error text set, and the process goes on. Three times, to
 * see that a caught panic leaves nothing broken. */
#include <stdio.h>
#include <string.h>

int check_panic(int value, int *dropped);
int check_index(size_t index);
void check_last_error(char *buf, size_t len);

int main(void)
{
    char text[256];
    for (int i = 0; i < 3; i++) {
        int dropped = 0;
        int rc = check_panic(i, &dropped);
        check_last_error(text, sizeof text);
        if (rc != -99 || dropped != 1 || strstr(text, "panic was caught") == NULL) {
            fprintf(stderr, "check: panic %d: rc %d, dropped %d, text '%s'\n", i, rc, dropped, text);
            return 1;
        }
    }
    int dropped = 0;
    if (check_panic(-1, &dropped) != 0 || dropped != 1) {
        fprintf(stderr, "check: no panic: dropped %d\n", dropped);
        return 1;
    }
    if (check_index(1) != 2 || check_index(7) != -99) {
        fprintf(stderr, "check: index out of bounds not caught\n");
        return 1;
    }
    printf("firmware-check: 4 panics caught by the panic guard, destructors ran\n");
    return 0;
}
