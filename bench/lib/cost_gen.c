/* bench/cost's generator: N rows of a FOCUS 1.0 cost export on stdout, seeded
 * and deterministic. About 20 teams and 200 services; tags as a JSON object in
 * the Tags column (team, service, env, cost-center), with some rows untagged
 * (about 4%) and some missing a key, as real exports have.
 * Usage: cost_gen ROWS > file.csv  (built by bench/cost with cc -O2). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)(state >> 11);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: cost_gen ROWS\n");
        return 2;
    }
    long long rows = atoll(argv[1]);
    static const char *const teams[20] = {
        "payments", "identity", "search",    "orders", "platform",  "data",  "growth",
        "ml",       "checkout", "catalog",   "mobile", "web",       "infra", "security",
        "billing",  "support",  "logistics", "ads",    "analytics", "core"};
    static const char *const envs[4] = {"prod", "staging", "dev", "qa"};
    static const char *const cats[6] = {"Compute",    "Storage",   "Databases",
                                        "Networking", "Analytics", "AI and Machine Learning"};
    static const char *const svcnames[6] = {"Amazon Elastic Compute Cloud",
                                            "Amazon Simple Storage Service",
                                            "Amazon Relational Database Service",
                                            "Amazon Virtual Private Cloud",
                                            "Amazon Athena",
                                            "Amazon SageMaker"};
    static const char *const regions[4] = {"eu-west-1", "us-east-1", "eu-central-1", "ap-south-1"};
    static char buf[1 << 16];
    setvbuf(stdout, buf, _IOFBF, sizeof(buf));
    fputs("BillingAccountId,BillingCurrency,BillingPeriodStart,BillingPeriodEnd,"
          "ChargePeriodStart,ChargePeriodEnd,BilledCost,EffectiveCost,ListCost,"
          "ChargeCategory,"
          "ProviderName,RegionId,ResourceId,ServiceCategory,ServiceName,SkuId,"
          "SubAccountId,Tags\n",
          stdout);
    for (long long i = 0; i < rows; i++) {
        uint32_t r = rnd(), r2 = rnd();
        int month = 9 + (int)(i * 3 / (rows ? rows : 1)); /* Sep..Nov 2026 */
        int day = 1 + (int)(r % 28), hour = (int)(r2 % 24);
        int svc = (int)(rnd() % 200), team = svc % 20, k = svc % 6;
        /* cost: mostly cents, some dollars, a few large; 6 decimals */
        uint32_t c = rnd();
        long long micro = c % 100 < 90 ? (long long)(c % 50000) : (long long)(c % 90000000);
        long long eff = micro - micro / 10 * (long long)(r2 % 3 == 0);
        printf("%012u,USD,2026-%02d-01T00:00:00Z,2026-%02d-01T00:00:00Z,"
               "2026-%02d-%02dT%02d:00:00Z,2026-%02d-%02dT%02d:59:59Z,"
               "%lld.%06lld,%lld.%06lld,%lld.%06lld,Usage,AWS,%s,"
               "arn:aws:ec2:%s:1234:instance/i-%08x,%s,%s,SKU%04d,%012u,",
               100000000u + (unsigned)(i % 3), month, month + 1, month, day, hour, month, day, hour,
               micro / 1000000, micro % 1000000, eff / 1000000, eff % 1000000,
               micro * 12 / 10 / 1000000, micro * 12 / 10 % 1000000, regions[r % 4], regions[r % 4],
               rnd(), cats[k], svcnames[k], svc * 7 % 9973, 200000000u + (unsigned)team);
        uint32_t t = rnd() % 100;
        if (t < 4) { /* untagged */
            putchar('\n');
            continue;
        }
        printf("\"{\"\"team\"\":\"\"%s\"\"", teams[team]);
        if (t >= 8)
            printf(",\"\"service\"\":\"\"svc-%03d\"\"", svc);
        printf(",\"\"env\"\":\"\"%s\"\"", envs[r2 % 4]);
        if (t >= 12)
            printf(",\"\"cost-center\"\":\"\"cc-%04d\"\"", 1000 + team * 3 + (int)(r % 3));
        fputs("}\"\n", stdout);
    }
    return 0;
}
